//! One trait over OpenAI, Anthropic, Gemini, OpenAI-compatible servers and an offline provider, with typed, retry-aware errors.
