"""Model backends, each imported only when used: a local transformers model, any LangChain
chat model, any LlamaIndex LLM."""
