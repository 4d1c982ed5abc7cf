"""Data generation for your own characters: RoleGPT references and Context-Instruct triplets."""
