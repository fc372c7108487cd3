"""allauth.mfa's pages (/accounts/2fa/...), each run in one transaction (govsite.accounts.mfa.mfa_page), so the
audit event a factor's enrolment, removal or new recovery codes write commits with the change itself.
Included before allauth's own URLs, which it shadows with the same paths and names."""

from allauth.mfa import urls as allauth_mfa_urls
from django.urls import URLPattern, URLResolver, path

from govsite.accounts.mfa import mfa_page


def _wrapped(patterns: list) -> list:
    out: list[URLPattern | URLResolver] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            out.append(
                path(str(pattern.pattern), (_wrapped(pattern.url_patterns), pattern.app_name, pattern.namespace))
            )
        else:
            view = mfa_page(pattern.name, pattern.callback)
            out.append(URLPattern(pattern.pattern, view, pattern.default_args, pattern.name))
    return out


urlpatterns = _wrapped(allauth_mfa_urls.urlpatterns)
