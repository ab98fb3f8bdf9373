"""The one error type of rendering: its message is fit to show in a chat."""


class RenderError(RuntimeError):
    pass
