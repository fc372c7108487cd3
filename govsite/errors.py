"""Errors and error pages every app shares (a foundation module: it imports no app)."""

from django.shortcuts import render


class InvalidTransition(Exception):
    """The object is not in a state that allows this action (e.g. approving a cancelled request,
    deciding a signed-off review). Pages show the message; the API answers 409 with it."""

    def __init__(self, status: str, action: str, detail: str = ""):
        self.status, self.action = status, action
        super().__init__(detail or f"Cannot {action}: it is {status}.")


def forbidden(request, exception=None):
    message = str(exception) if exception and str(exception) else "You do not have permission to do that."
    return render(request, "403.html", {"message": message}, status=403)
