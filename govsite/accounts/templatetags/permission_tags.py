"""What a person may do, for templates: the answers come from permissions/, never from a template's own test."""

from django import template

from govsite.accounts import permissions

register = template.Library()


@register.filter
def key_actions(key, user) -> permissions.KeyActions:
    """`{% with actions=key|key_actions:user %}{% if actions.reveal %}…`"""
    return permissions.key_actions_for(user, key)
