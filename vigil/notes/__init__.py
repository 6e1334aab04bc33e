"""Community Notes: the public download format and a scorer that follows the open reference
(github twitter/communitynotes). ``vigil notes score`` is the entry point (vigil/notes/cli.py)."""
