"""Answering: offline skills now, a local LLM / OpenAI-compatible client later."""
from jarvis.brain.brain import Brain, Responder
from jarvis.brain.skills import Context, Skill
from jarvis.brain.types import Response, Turn

__all__ = ["Brain", "Context", "Responder", "Response", "Skill", "Turn"]
