"""Many accounts (cli.md "Many accounts"): which accounts a run reaches, and a session in each.

    model.AccountsOptions   how the accounts are chosen (--org, --accounts-file, --role-name, ...)
    model.Account           one account: id, name, state, the roles to assume, its regions and policy
    sources.resolve         the accounts of a run (organizations:ListAccounts, or the accounts file)
    sessions.assume         an Aws for one account on refreshable assumed-role credentials
    fanout.for_each         a pool over accounts, bounding the calls in flight across them all
"""
