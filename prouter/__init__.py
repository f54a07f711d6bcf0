"""PersonalizedRouter: a personalized LLM router backed by a property graph and a GNN."""
