"""The Pulumi program, its components, the deploy-time converter and the CrossGuard pack."""
