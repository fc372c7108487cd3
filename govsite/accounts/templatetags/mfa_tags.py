from django import template

register = template.Library()


@register.filter
def second_factors(alternatives) -> list[dict]:
    """allauth's other ways to confirm, without the password: the step-up asks for a second factor."""
    return [alt for alt in alternatives or () if str(alt.get("id", "")).startswith("mfa_")]
