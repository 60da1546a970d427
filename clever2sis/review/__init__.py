"""Review before sign-off: what a build holds, what changed since an older one, and what Canvas will do."""
