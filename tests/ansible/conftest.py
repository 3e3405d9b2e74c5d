"""The Ansible tier: lint and syntax run anywhere; converges need root (a network namespace
per run, and root-owned files), so outside CI a non-root run skips them (``root_only``, in
tests/conftest.py)."""
