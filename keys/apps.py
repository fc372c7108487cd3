from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "keys"

    def ready(self):
        # People who join a team get a key from its rollouts that include joiners: accounts calls the hook
        # (it may not import keys, the layer above it). Imported here, not at the top: the services import
        # models, which the app registry loads only after this module.
        from govsite.accounts.services import register_membership_added_hook
        from keys.services import rollout_member_joined

        register_membership_added_hook(rollout_member_joined)
