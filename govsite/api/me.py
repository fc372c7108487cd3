"""Who the API thinks you are: handy to check a token before automating with it."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from govsite.accounts import selectors
from govsite.api.common import ApiView, errors
from govsite.api.models import ApiToken


class MembershipOutput(serializers.Serializer):
    class Meta:
        ref_name = "Membership"

    team = serializers.SlugField(source="team.slug")
    team_name = serializers.CharField(source="team.name")
    role = serializers.CharField()


class TokenInfoOutput(serializers.Serializer):
    class Meta:
        ref_name = "TokenInfo"

    prefix = serializers.CharField()
    name = serializers.CharField()
    scope = serializers.ChoiceField(choices=ApiToken.Scope.choices)
    expires_at = serializers.DateTimeField()


class MeOutput(serializers.Serializer):
    class Meta:
        ref_name = "Me"

    id = serializers.IntegerField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    org_roles = serializers.ListField(child=serializers.CharField())
    teams = MembershipOutput(many=True)
    token = TokenInfoOutput(allow_null=True, help_text="The API token of this call; null for a browser session.")


class MeApi(ApiView):
    @extend_schema(operation_id="me", summary="Me", tags=["me"], responses={200: MeOutput, **errors()})
    def get(self, request):
        user = request.user
        token = request.auth if isinstance(request.auth, ApiToken) else None
        body = {
            "id": user.pk,
            "email": user.email,
            "full_name": user.full_name,
            "org_roles": sorted(user.org_roles),
            "teams": selectors.my_teams(user=user),
            "token": token,
        }
        return Response(MeOutput(body).data)
