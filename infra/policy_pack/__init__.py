"""CrossGuard policy pack: the catalogue's evaluators at `pulumi preview --policy-pack infra/policy_pack`."""
