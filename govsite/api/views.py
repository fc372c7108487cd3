"""Pages of the API: personal tokens (Settings → API tokens) and the API's documentation."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated

from govsite.accounts.mfa import second_factor_required
from govsite.api import selectors, services
from govsite.api.auth import ApiTokenAuthentication
from govsite.api.forms import ApiTokenForm
from govsite.web import login_required, run_service


class SchemaView(SpectacularAPIView):
    """The OpenAPI 3 schema, JSON by default (YAML with `Accept: application/vnd.oai.openapi`)."""

    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


@login_required
def api_docs(request):
    """Swagger UI, served from the site's own static files (drf-spectacular-sidecar), no CDN."""
    return render(request, "api/docs.html")


# --- personal API tokens ------------------------------------------------------------------------------


def _token_page(request, form, *, new_secret: str = "", new_token=None, status: int = 200):
    response = render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "tokens": selectors.my_api_tokens(user=request.user),
            "others": selectors.others_live_api_tokens(user=request.user),
            "new_secret": new_secret,
            "new_token": new_token,
        },
        status=status,
    )
    return response


@never_cache
@login_required
@second_factor_required  # a read-write token acts without a second factor: minting one asks for it
def token_list(request):
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        ok, created = run_service(
            form,
            lambda: services.api_token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                expires_at=form.expires_at,
            ),
        )
        if ok:
            token, secret = created
            # Shown once, in this response only; govsite keeps its hash.
            response = _token_page(request, ApiTokenForm(), new_secret=secret, new_token=token)
            response["Cache-Control"] = "no-store"
            return response
    return _token_page(request, form, status=400 if form.errors else 200)


@login_required
def token_revoke(request, pk):
    token = get_object_or_404(selectors.api_tokens_visible(user=request.user), pk=pk)  # 404 outside scope
    if request.method == "POST":  # the confirmation page's button; there is nothing to fill in
        try:
            services.api_token_revoke(token=token, actor=request.user)
            messages.success(request, f"Token {token.name} revoked: calls with it are refused from now on.")
        except services.InvalidTransition as exc:
            messages.error(request, str(exc))
        return redirect("settings_api_tokens")
    return render(request, "api/token_revoke.html", {"token": token})
