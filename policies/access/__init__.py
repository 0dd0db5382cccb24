"""Access to tenant data, decided by an IAM policy evaluator: the world read from the stack
(`world`, `arns`), the sessions and what each reaches (`reach`), the rule and the tenancy matrix
(`rule`), and the evaluator behind one version check (`simulator`)."""
