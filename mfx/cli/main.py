def main() -> None:
    raise SystemExit("mfx: not built yet")
