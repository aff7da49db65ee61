"""Bulk review on the real pipeline's faces: keep the unflagged, discard the flagged, fold
near-duplicates into their best face, and count the keys."""

from __future__ import annotations

from pathlib import Path

from reelface.identity import identify
from reelface.tui.app import ReelfaceApp
from reelface.tui.model import Review
from reelface.tui.screens.review import ReviewScreen
from tests.test_tui import press, root, run, screen_text, template, verdicts  # noqa: F401


def identity_with_duplicates(app: ReelfaceApp) -> int:
    """The identity whose review folds the most duplicates into their groups' best faces."""
    reviews = [Review.load(app.conn, i.id) for i in identify.identities(app.conn)]
    best = max(reviews, key=lambda r: (sum(map(len, r.members.values())), -r.identity))
    assert best.members, "the test film's static shots should give near-duplicates"
    return best.identity


async def review_of(app: ReelfaceApp, pilot, identity: int) -> ReviewScreen:
    app.push_screen(ReviewScreen(identity))
    await press(app, pilot)
    assert isinstance(app.screen, ReviewScreen)
    return app.screen


def test_one_key_keeps_the_unflagged_faces_of_the_page_and_one_undo_takes_it_back(
    root: Path,  # noqa: F811
) -> None:
    async def script(app, pilot) -> None:
        reviews = [Review.load(app.conn, i.id) for i in identify.identities(app.conn)]
        most = max(reviews, key=lambda r: (len(r.unflagged()), -r.identity))
        screen = await review_of(app, pilot, most.identity)
        review = screen.review
        unflagged = [f for f in screen.page if not f.flagged]
        assert len(unflagged) >= 2, "some identity should hold faces that pass"
        # A person's own decision on an unflagged face stands: move to it and discard it.
        target = review.visible.index(unflagged[0])
        await press(app, pilot, *(["right"] * target), "d")
        keys_before = app.keystrokes
        await press(app, pilot, "K")
        got = verdicts(app)
        assert got[unflagged[0].id] == "discard"
        assert all(got[f.id] == "keep" for f in unflagged[1:])
        assert not any(f.id in got for f in screen.page if f.flagged)
        assert app.keystrokes == keys_before + 1
        assert f"{app.keystrokes} keys" in screen_text(app)
        await press(app, pilot, "u")  # the whole page's keep is one decision
        got = verdicts(app)
        assert not any(f.id in got for f in unflagged[1:]) and got[unflagged[0].id] == "discard"

    run(root, script)


def test_duplicates_fold_into_their_best_face_expand_and_are_discarded_as_flagged(
    root: Path,  # noqa: F811
) -> None:
    async def script(app, pilot) -> None:
        screen = await review_of(app, pilot, identity_with_duplicates(app))
        review = screen.review
        leader = max(review.members, key=lambda lead: len(review.members[lead]))
        group = {m.id for m in review.members[leader]}
        shown = [f.id for f in review.visible]
        assert leader in shown and not group & set(shown)  # folded: only the best face shows
        assert f"+{len(group)}" in screen_text(app)
        await press(app, pilot, *(["right"] * shown.index(leader)), "g")
        shown = [f.id for f in review.visible]
        at = shown.index(leader)
        assert set(shown[at + 1 : at + 1 + len(group)]) == group  # expanded right after it
        # The person keeps one duplicate by hand, folds the group again, then discards flagged.
        await press(app, pilot, "right", "k")
        kept = shown[at + 1]
        await press(app, pilot, "g")
        assert review.current.id == leader and not group & {f.id for f in review.visible}
        await press(app, pilot, "X", "y")
        got = verdicts(app)
        assert got[kept] == "keep"  # what the person decided stays
        assert all(got[m] == "discard" for m in group - {kept})
        assert all(got[f.id] == "discard" for f in review.faces if f.flagged and f.id != kept)
        best = next(f for f in review.faces if f.id == leader)
        assert best.flagged or leader not in got  # an unflagged best face is left alone
        await press(app, pilot, "ctrl+k")
        got = verdicts(app)
        assert all(got.get(f.id) == "keep" for f in review.faces if not f.flagged)

    run(root, script)


def test_a_face_a_person_moves_is_no_longer_flagged_as_not_recognised(
    root: Path,  # noqa: F811
) -> None:
    """The clustering judged it against the identity it was put in; where a person puts it,
    they recognised it, so the bulk keep takes it, and undo brings the flag back."""
    from reelface.catalogue import open_catalogue
    from reelface.catalogue import quality as store
    from reelface.catalogue.schema import transaction
    from reelface.identity import decisions, recognised

    conn = open_catalogue(root / "catalogue.sqlite")
    try:
        first, second = sorted(identify.identities(conn), key=lambda i: -i.faces)[:2]
        face = next(f for f in Review.load(conn, first.id).faces if not f.flagged)
        stored = recognised.with_verdict(face.reasons, 0.09, 0.06)  # the run's verdict
        with transaction(conn):
            store.update_reasons(conn, [(face.id, stored, False)])
        assert face.id in Review.load(conn, first.id).flagged()
        decisions.reassign(conn, [face.id], second.id)
        moved = next(f for f in Review.load(conn, second.id).faces if f.id == face.id)
        assert not moved.flagged and moved.reasons == face.reasons
        assert face.id in Review.load(conn, second.id).unflagged()
        decisions.undo(conn)
        assert face.id in Review.load(conn, first.id).flagged()
    finally:
        conn.close()
