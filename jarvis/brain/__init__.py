"""Answering: offline skills first, then an LLM (in-process GGUF model or an OpenAI-compatible server)."""
from jarvis.brain.brain import Brain, Responder
from jarvis.brain.skills import Context, Skill
from jarvis.brain.types import Response, Turn

__all__ = ["Brain", "Context", "Responder", "Response", "Skill", "Turn"]
