"""The household page: one asset over the listeners of listeners.yaml who share (none without the file)."""

import dagster as dg

from ...dashboard.household import HOUSEHOLD_PAGE, HouseholdMember, write_household
from ...plays.store import history_or_empty
from ...resources import DataStore, ListeningSourceResource
from ...storage.files import CorruptFileError, read_json
from ..common import path_metadata
from ..factory import household, several

GROUP = "household"  # the asset's group; the job that refreshes it has the same name


def member(store: DataStore, listener) -> HouseholdMember:
    """What the page shows of one sharing listener, read from its data root (never written here)."""
    paths = store.for_listener(listener.settings).paths
    try:
        clusters = read_json(paths.mood_clusters, None)
    except CorruptFileError:
        clusters = None  # moods unnamed until the next retrain rewrites the file
    return HouseholdMember(listener.name, history_or_empty(paths), share=True, display_name=listener.settings.display_name, clusters=clusters)


@dg.definitions
def defs() -> dg.Definitions:
    listeners = household()
    if not several(listeners):
        return dg.Definitions()
    sharing = [listener for listener in listeners if listener.settings.share]

    @dg.asset(group_name=GROUP, deps=[listener.key("history") for listener in sharing], kinds={"html", "json"})
    def household_page(context: dg.AssetExecutionContext, store: DataStore, listening_source: ListeningSourceResource) -> dg.MaterializeResult:
        """`export/household.html` and `household_data.json` under the data root: the listeners who
        share (`share: true` in listeners.yaml; nobody else, not even as a count), who listened when
        today, the household's top artists and moods, and a link to each one's dashboard."""
        export = store.paths.export
        stats = write_household(export, [member(store, listener) for listener in sharing], listening_source.now(), store.timezone)
        if not sharing:
            context.log.info("nobody shares (`share: true` in listeners.yaml): the page lists no one")
        return dg.MaterializeResult(metadata={**stats, **path_metadata(export / HOUSEHOLD_PAGE)})

    return dg.Definitions(assets=[household_page])
