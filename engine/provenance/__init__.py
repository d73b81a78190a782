"""C2PA content credentials on every output that can carry them, and their verification.

`manifest` says which formats carry a manifest and what it states (the action, the
software, the ingredients by hash); `identity` finds the certificate and key that sign
it (the user's, or one made once per installation); `sign` embeds it into a finished
temporary file before the output's atomic rename; `verify` reads a file's manifest back
with the C2PA library's own validation. Every other format keeps the plain label only.
"""
