"""``mfx --help`` as click prints it, kept here so the hot path prints it without click.

Written by ``python -m mfx.cli.help_texts`` from the click group itself; a test fails when the
group's help changes and this module was not written again. Keyed by the width of the help
(``max(min(COLUMNS, 100) - 2, 50)``, as click computes it): the 80-column default (also what a
pipe gets) and a terminal of 100 columns or more. Other widths go through click.
"""

from __future__ import annotations

TOP_HELP: dict[int, str] = {
    78: (
        'Usage: mfx [OPTIONS] COMMAND [ARGS]...\n'
        '\n'
        '  mfx: a declarative control plane for a plugin-based music player.\n'
        '\n'
        '  Start the daemon, then manage it the way you use kubectl:\n'
        '    mfx serve &\n'
        '    mfx apply -f manifests/\n'
        '    mfx wait --for=condition=Ready pm --all --timeout=60s\n'
        '    mfx get all\n'
        '    mfx describe pm local-music\n'
        '\n'
        'Options:\n'
        '  --home PATH    Daemon home (socket, state). Default: $MFX_HOME or\n'
        '                 ~/.local/state/mfx.\n'
        "  --server TEXT  Talk to a daemon's TCP listener instead of the socket:\n"
        '                 HOST:PORT or https://HOST:PORT for its --listen (HTTPS,\n'
        '                 verified against HOME/tls/ca.crt), http://HOST:PORT for its\n'
        '                 --listen-http.\n'
        '  --token TEXT   Bearer token for --server (default: read HOME/token).\n'
        '  -h, --help     Show this message and exit.\n'
        '\n'
        'Commands:\n'
        '  apply          Create or update objects from manifests (all documents...\n'
        '  create         Create objects from manifests; one that exists already...\n'
        '  replace        Replace objects with the manifests as they are; a field...\n'
        '  get            Display objects: a table by default, or...\n'
        '  describe       Show an object in detail: spec, conditions and recent...\n'
        '  edit           Edit live objects in your editor ($MFX_EDITOR, $EDITOR...\n'
        '  delete         Delete objects by name, by manifest or by label selector.\n'
        "  diff           Show what 'mfx apply' (or a GitSource's next sync) would...\n"
        '  patch          Update fields of an object in place (the result is...\n'
        '  label          Set or remove labels of objects (KEY=VALUE sets, KEY-...\n'
        '  annotate       Set or remove annotations of objects (KEY=VALUE sets,...\n'
        '  wait           Wait until objects meet a condition (exit 1 on timeout).\n'
        '  explain        Describe a kind or one of its fields, from the CRD schema.\n'
        '  events         List events, oldest first; with -w, keep printing new...\n'
        "  logs           Print a plugin's log: its stdout/stderr and the daemon's...\n"
        '  api-resources  List the kinds the daemon serves, with their short names.\n'
        '  version        Print the client and daemon versions.\n'
        '  completion     Print the shell completion script for bash, zsh or fish.\n'
        '  why            Explain why a plugin is not Ready: walk its dependency...\n'
        '  analyze        Analyze the plugin set (like systemd-analyze).\n'
        '  graph          Print or render the plugin dependency graph, with states...\n'
        "  reset-failed   Clear a plugin's failed state (StartLimitHit, backoff)...\n"
        '  rollout        Manage the rollout of plugins (like kubectl rollout).\n'
        "  call           Call a running plugin's method by hand and print its...\n"
        '  reconcile      Ask the controller to reconcile objects now, without...\n'
        '  suspend        Stop reconciling objects (spec.suspend=true) until they...\n'
        '  resume         Reconcile suspended objects again (spec.suspend=false);...\n'
        '  cordon         Mark nodes unschedulable (spec.unschedulable=true):...\n'
        '  uncordon       Mark nodes schedulable again (spec.unschedulable=false),...\n'
        '  top            Live table of plugins: readiness, restarts, health...\n'
        '  search         Search every Ready music source at once (a slow source...\n'
        '  library        List what the Ready music sources hold: songs, albums,...\n'
        '  playlists      List the playlists of every Ready music source (what...\n'
        '  play           Play: the best match of QUERY (queued next), a playlist,...\n'
        '  pause          Pause playback (mfx play continues where it stopped).\n'
        '  stop           Stop playback (the queue stays).\n'
        '  next           Skip to the next song of the play mode.\n'
        '  prev           Go back to the previous song.\n'
        '  seek           Jump within the current song: to POSITION, or by...\n'
        '  queue          Show or edit the play queue (default: ls).\n'
        '  mode           Show the play mode, or set it to MODE.\n'
        '  volume         Show the volume, set it (0-100), or change it by +/-STEP...\n'
        '  mute           Mute (or unmute with --off).\n'
        '  now            What is playing: song, progress bar, the lyric line...\n'
        '  lyrics         Lyrics of the current song; the line showing now is...\n'
        '  migrate        Import the settings of another player as mfx manifests.\n'
        '  tui            Full-screen terminal player and plugin console.\n'
        '  plugin         Write, package, sign, verify and install plugins.\n'
        '  trust          Manage the public keys the daemon trusts to sign plugin...\n'
        '  rollback       Put a plugin back on its previous version (sets...\n'
        '  config         Configuration for other clients of the daemon.\n'
        '  serve          Run the mfx daemon in the foreground (SIGTERM or Ctrl-C...\n'
        "  agent          Run this node's plugins and player against an API server.\n"
        "  ui             Print the URL of the web UI of the running daemon ('mfx...\n"
        "  demo           Run the whole player on embedded defaults (what 'make...\n"
    ),
    98: (
        'Usage: mfx [OPTIONS] COMMAND [ARGS]...\n'
        '\n'
        '  mfx: a declarative control plane for a plugin-based music player.\n'
        '\n'
        '  Start the daemon, then manage it the way you use kubectl:\n'
        '    mfx serve &\n'
        '    mfx apply -f manifests/\n'
        '    mfx wait --for=condition=Ready pm --all --timeout=60s\n'
        '    mfx get all\n'
        '    mfx describe pm local-music\n'
        '\n'
        'Options:\n'
        '  --home PATH    Daemon home (socket, state). Default: $MFX_HOME or ~/.local/state/mfx.\n'
        "  --server TEXT  Talk to a daemon's TCP listener instead of the socket: HOST:PORT or\n"
        '                 https://HOST:PORT for its --listen (HTTPS, verified against HOME/tls/ca.crt),\n'
        '                 http://HOST:PORT for its --listen-http.\n'
        '  --token TEXT   Bearer token for --server (default: read HOME/token).\n'
        '  -h, --help     Show this message and exit.\n'
        '\n'
        'Commands:\n'
        '  apply          Create or update objects from manifests (all documents are validated before...\n'
        '  create         Create objects from manifests; one that exists already is an error (mfx...\n'
        '  replace        Replace objects with the manifests as they are; a field left out is removed.\n'
        '  get            Display objects: a table by default, or YAML/JSON/names/JSONPath.\n'
        '  describe       Show an object in detail: spec, conditions and recent events.\n'
        '  edit           Edit live objects in your editor ($MFX_EDITOR, $EDITOR or vi); several open...\n'
        '  delete         Delete objects by name, by manifest or by label selector.\n'
        "  diff           Show what 'mfx apply' (or a GitSource's next sync) would change (exit 0: no...\n"
        '  patch          Update fields of an object in place (the result is validated like apply).\n'
        '  label          Set or remove labels of objects (KEY=VALUE sets, KEY- removes).\n'
        '  annotate       Set or remove annotations of objects (KEY=VALUE sets, KEY- removes).\n'
        '  wait           Wait until objects meet a condition (exit 1 on timeout).\n'
        '  explain        Describe a kind or one of its fields, from the CRD schema.\n'
        '  events         List events, oldest first; with -w, keep printing new ones under them.\n'
        "  logs           Print a plugin's log: its stdout/stderr and the daemon's messages about it.\n"
        '  api-resources  List the kinds the daemon serves, with their short names.\n'
        '  version        Print the client and daemon versions.\n'
        '  completion     Print the shell completion script for bash, zsh or fish.\n'
        '  why            Explain why a plugin is not Ready: walk its dependency chain to the root cause.\n'
        '  analyze        Analyze the plugin set (like systemd-analyze).\n'
        '  graph          Print or render the plugin dependency graph, with states and the critical...\n'
        "  reset-failed   Clear a plugin's failed state (StartLimitHit, backoff) so it is started again.\n"
        '  rollout        Manage the rollout of plugins (like kubectl rollout).\n'
        "  call           Call a running plugin's method by hand and print its answer (for plugin...\n"
        '  reconcile      Ask the controller to reconcile objects now, without waiting for their...\n'
        '  suspend        Stop reconciling objects (spec.suspend=true) until they are resumed.\n'
        '  resume         Reconcile suspended objects again (spec.suspend=false); a GitSource syncs at...\n'
        '  cordon         Mark nodes unschedulable (spec.unschedulable=true): nothing new is placed on...\n'
        "  uncordon       Mark nodes schedulable again (spec.unschedulable=false), undoing 'mfx cordon'.\n"
        '  top            Live table of plugins: readiness, restarts, health latency, call and error...\n'
        '  search         Search every Ready music source at once (a slow source never holds up the...\n'
        '  library        List what the Ready music sources hold: songs, albums, artists or playlists.\n'
        '  playlists      List the playlists of every Ready music source (what `mfx play --playlist...\n'
        '  play           Play: the best match of QUERY (queued next), a playlist, a queued song, or...\n'
        '  pause          Pause playback (mfx play continues where it stopped).\n'
        '  stop           Stop playback (the queue stays).\n'
        '  next           Skip to the next song of the play mode.\n'
        '  prev           Go back to the previous song.\n'
        '  seek           Jump within the current song: to POSITION, or by +/-SECONDS from where it is.\n'
        '  queue          Show or edit the play queue (default: ls).\n'
        '  mode           Show the play mode, or set it to MODE.\n'
        '  volume         Show the volume, set it (0-100), or change it by +/-STEP (kept within 0-100).\n'
        '  mute           Mute (or unmute with --off).\n'
        '  now            What is playing: song, progress bar, the lyric line showing now.\n'
        "  lyrics         Lyrics of the current song; the line showing now is marked with '>'.\n"
        '  migrate        Import the settings of another player as mfx manifests.\n'
        '  tui            Full-screen terminal player and plugin console.\n'
        '  plugin         Write, package, sign, verify and install plugins.\n'
        '  trust          Manage the public keys the daemon trusts to sign plugin packages.\n'
        '  rollback       Put a plugin back on its previous version (sets spec.version).\n'
        '  config         Configuration for other clients of the daemon.\n'
        '  serve          Run the mfx daemon in the foreground (SIGTERM or Ctrl-C stops it cleanly).\n'
        "  agent          Run this node's plugins and player against an API server.\n"
        "  ui             Print the URL of the web UI of the running daemon ('mfx serve --ui-address').\n"
        "  demo           Run the whole player on embedded defaults (what 'make run' does).\n"
    ),
}

if __name__ == "__main__":
    from pathlib import Path

    from mfx.cli.root import top_help

    source = Path(__file__).read_text()
    head = source[:source.index("TOP_HELP: dict[int, str] = {")]
    tail = source[source.index('\nif __name__ == "__main__":'):]
    entries = "".join(f"    {width}: (\n" + "".join(f"        {line!r}\n" for line in top_help(width).splitlines(True))
                      + "    ),\n" for width in (78, 98))
    Path(__file__).write_text(head + "TOP_HELP: dict[int, str] = {\n" + entries + "}\n" + tail)
