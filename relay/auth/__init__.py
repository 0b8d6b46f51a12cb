"""Who is calling: AI Pipe tokens, Google sign-in, and who may call what."""
