def punctuate(text: str) -> str:
    return text if text.endswith(("!", ".", "?")) else text + "!"
