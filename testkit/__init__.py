"""What tests, benchmarks and demos share: fake providers and Google (fakes/), and the real relay
in a subprocess on a free port (relay_process.py). Not part of the installed package."""
