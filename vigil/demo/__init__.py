"""`vigil demo`: an embedded AWS emulator, the stack deployed into it, seeded data, the job run."""
