"""Entry point for `pulumi up` (Pulumi.yaml: main: infra/). Vigil must be installed in the venv."""
from vigil.infra.program import main

main()
