"""Feature services: one per model version, listing exactly the features that model reads.

The lists are defined once in ``vigil.serving.services``; this module turns them into Feast objects.
"""

from feast import FeatureService
from feature_views import creator_context_fv, post_behavior_fv, user_activity_fv

from vigil.serving.services import SERVICES

_VIEWS = {fv.name: fv for fv in (post_behavior_fv, creator_context_fv, user_activity_fv)}


def _service(name: str, description: str) -> FeatureService:
    return FeatureService(
        name=name,
        features=[_VIEWS[view][list(names)] for view, names in SERVICES[name].items()],
        description=description,
        tags={"owner": "trust-and-safety-ml", "model": name},
    )


# moderation_v1: the harmful-content models (training/).
moderation_v1 = _service(
    "moderation_v1", "Features read by the moderation_v1 harmful-content models."
)
