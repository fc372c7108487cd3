"""Auth plumbing only: remember which sessions belong to whom, so deactivation can end them."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from govsite.accounts.models import UserSession


@receiver(user_logged_in)
def remember_session(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        if not request.session.session_key:
            request.session.save()
        UserSession.objects.get_or_create(user=user, session_key=request.session.session_key)
