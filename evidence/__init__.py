"""Evidence packs: the Jinja report, the signed manifest, and offline verification.

Other commands call `render.write_report(directory, policy_path=None, signing_key=None)` and
`manifest.verify_pack(directory, public_key=None)`.
"""
