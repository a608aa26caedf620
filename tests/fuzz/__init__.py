"""The bad-input fuzz harness that ``tests/fuzz_inputs.py`` runs: base inputs, their mutations,
the cases of each input kind, and the fork server that runs each case in its own process."""
