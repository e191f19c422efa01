"""Jarvis as a speech server for other apps (issue 15): the warmed voices and Whisper over the OpenAI speech API.

``security`` (token, allowed hosts), ``scheduler`` (one queue in front of the models), ``audio_out`` (response
formats), ``service`` (what the models do for a request), ``app`` (the FastAPI routes) and ``server`` (uvicorn,
``jarvis serve``). Secure by default: loopback, a bearer token from the OS keyring, Host checked, no CORS.
"""
