"""The melody pages on the web: ``/m/<page id>`` for every melody, ``/g/<page id>`` for the
gallery of a chat that switched one on. Served by aiohttp (which discord.py already brings)
in the bot's own process, beside ``/health``; their score, audio and MusicXML are made by the
worker pool like a chat reply's, once per melody while readers keep asking."""
