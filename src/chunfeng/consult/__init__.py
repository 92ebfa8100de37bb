"""The 12366 intelligent consultation: a shared knowledge base, Chinese retrieval, answers with their
basis, handoff to a person, and what people ask."""
