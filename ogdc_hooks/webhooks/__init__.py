"""Where webhooks enter: verify, decide what work they mean, store them durably."""
