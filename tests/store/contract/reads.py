"""The store contract, reads: the evaluator's reads, filters, order, pagination, expiration."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from headwater.engine.errors import AlreadyExistsError, InvalidRequestError, PreconditionFailedError
from headwater.engine.relationships import ObjectRef, SubjectRef
from headwater.engine.store import Operation, Precondition, RelationshipFilter, Row, Store, Update

from .support import (
    DOC1,
    EVERYTHING,
    FILTER_CASES,
    SORTED_DATASET,
    START,
    ContractBase,
    FakeClock,
    assert_reads_agree,
    changes_text,
    create,
    delete,
    found,
    read_all,
    rel,
    resources,
    texts,
    touch,
)


class ReadsContract(ContractBase):
    """Reads: the evaluator's reads, filters, order, pagination, expiration."""

    # --- expiration --------------------------------------------------------------------------

    def test_expired_relationships_are_invisible_to_every_reader_method(self, store: Store) -> None:
        expiry = datetime(2030, 1, 1, tzinfo=timezone.utc)
        store.write([touch("doc:1#viewer@user:tom[expiration:2030-01-01T00:00:00Z]")])

        def visible(now: datetime) -> list[object]:
            with store.snapshot(now=now) as reader:
                return [
                    texts(reader.relationships("doc", "1", "viewer")),
                    texts(found(reader, DOC1, "viewer", "user", "tom", None)),
                    texts(resources(reader, "doc", "viewer", SubjectRef("user", "tom"))),
                    texts(reader.read(EVERYTHING)),
                    reader.count(EVERYTHING),
                ]

        seen = ["doc:1#viewer@user:tom[expiration:2030-01-01T00:00:00Z]"]
        assert visible(expiry - timedelta(microseconds=1)) == [seen, seen, seen, seen, 1]
        assert visible(expiry) == [[], [], [], [], 0]
        assert visible(expiry + timedelta(days=1)) == [[], [], [], [], 0]

    def test_snapshot_now_defaults_to_the_store_clock(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]")])
        assert len(read_all(store)) == 1
        clock.advance(seconds=30)
        assert read_all(store) == []

    def test_an_old_revision_read_with_an_earlier_now_sees_the_expired_relationship(
        self, store: Store, clock: FakeClock
    ) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]")])
        clock.advance(minutes=1)
        store.write([touch("doc:2#viewer@user:tom")])
        assert read_all(store, 1) == []
        assert read_all(store, 1, now=START) == ["doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]"]

    def test_create_replaces_an_expired_relationship(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]")])
        clock.advance(minutes=1)
        store.write([create("doc:1#viewer@user:tom[cav]")])
        assert read_all(store) == ["doc:1#viewer@user:tom[cav]"]
        assert read_all(store, now=START) == ["doc:1#viewer@user:tom[cav]"]  # the old row is gone, not hidden

    def test_create_of_a_not_yet_expired_relationship_fails(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]")])
        clock.advance(seconds=29)
        with pytest.raises(AlreadyExistsError):
            store.write([create("doc:1#viewer@user:tom")])

    def test_delete_leaves_expired_relationships_alone(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]"), touch("doc:1#viewer@user:ann")])
        clock.advance(minutes=1)
        revision = store.write([delete("doc:1#viewer@user:tom")])
        assert changes_text(store.changes(revision - 1)) == []
        assert store.delete(RelationshipFilter(resource_type="doc")) == (3, 1, False)

    def test_preconditions_ignore_expired_relationships(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]")])
        clock.advance(minutes=1)
        tom = RelationshipFilter(resource_type="doc", subject_id="tom")
        with pytest.raises(PreconditionFailedError):
            store.write([touch("doc:2#viewer@user:ann")], [Precondition(tom, must_match=True)])
        store.write([touch("doc:2#viewer@user:ann")], [Precondition(tom, must_match=False)])

    # --- filters, order, pagination ----------------------------------------------------------

    @pytest.mark.parametrize(("filter", "expected"), FILTER_CASES, ids=[str(f) for f, _ in FILTER_CASES])
    def test_read_and_count_apply_each_filter_field(
        self, loaded: Store, filter: RelationshipFilter, expected: list[str]
    ) -> None:
        with loaded.snapshot() as reader:
            assert texts(reader.read(filter)) == expected
            assert reader.count(filter) == len(expected)
        assert [r for r in SORTED_DATASET if filter.matches(rel(r))] == expected

    def test_read_orders_by_key_with_no_subject_relation_first(self, loaded: Store) -> None:
        assert read_all(loaded) == SORTED_DATASET

    def test_read_paginates_with_after(self, loaded: Store) -> None:
        pages: list[list[str]] = []
        after = None
        with loaded.snapshot() as reader:
            while True:
                page = reader.read(EVERYTHING, after=after, limit=3)
                if not page:
                    break
                pages.append(texts(page))
                after = page[-1].key
        assert [len(p) for p in pages] == [3, 3, 3, 2]
        assert sum(pages, []) == SORTED_DATASET

    def test_after_need_not_be_a_stored_key(self, loaded: Store) -> None:
        after = ("doc", "1", "viewer", "group", "eng", "manager")
        with loaded.snapshot() as reader:
            assert texts(reader.read(EVERYTHING, after=after, limit=2)) == [
                "doc:1#viewer@group:eng#member",
                "doc:1#viewer@group:eng2#member",
            ]
            after_none = ("doc", "1", "viewer", "group", "eng", "")
            assert texts(reader.read(EVERYTHING, after=after_none, limit=1)) == ["doc:1#viewer@group:eng#member"]

    def test_read_combines_filter_after_and_limit(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            first = reader.read(RelationshipFilter(subject_id="tom"), limit=2)
            rest = reader.read(RelationshipFilter(subject_id="tom"), after=first[-1].key)
        assert texts(first) == ["doc:1#viewer@user:tom", "doc:10#viewer@user:tom"]
        assert texts(rest) == ["doc:re#owner@user:tom", "doc:readme#viewer@user:tom", "folder:root#viewer@user:tom"]

    @pytest.mark.parametrize("filter", [RelationshipFilter(resource_type="doc"),
                                        RelationshipFilter(resource_type="doc", resource_id="1"),
                                        RelationshipFilter(resource_type="doc", resource_id="1", relation="viewer")],
                             ids=str)
    def test_pages_of_a_type_or_an_object_are_its_rows_in_order(self, loaded: Store,
                                                                 filter: RelationshipFilter) -> None:
        pages: list[str] = []
        after = None
        with loaded.snapshot() as reader:
            while page := reader.read(filter, after=after, limit=2):
                assert len(page) <= 2
                pages += texts(page)
                after = page[-1].key
        assert pages == [r for r in SORTED_DATASET if filter.matches(rel(r))] and pages

    def test_read_refuses_a_bad_limit_or_after(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            with pytest.raises(InvalidRequestError):
                reader.read(EVERYTHING, limit=0)
            with pytest.raises(InvalidRequestError):
                reader.read(EVERYTHING, after=("doc:1", "viewer", "user:tom"))  # type: ignore[arg-type]

    def test_read_and_count_refuse_a_filter_that_is_not_a_relationship_filter(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            with pytest.raises(InvalidRequestError):
                reader.read({"resource_type": "doc"})  # type: ignore[arg-type]
            with pytest.raises(InvalidRequestError):
                reader.count(None)  # type: ignore[arg-type]

    def test_filter_refuses_id_and_prefix_together(self) -> None:
        with pytest.raises(InvalidRequestError):
            RelationshipFilter(resource_id="1", resource_id_prefix="1")

    def test_filter_refuses_a_prefix_with_characters_ids_cannot_have(self) -> None:
        with pytest.raises(InvalidRequestError):
            RelationshipFilter(resource_id_prefix="a%")

    def test_relationships_returns_every_kind_of_subject_sorted(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            assert texts(reader.relationships("doc", "1", "viewer")) == [
                "doc:1#viewer@group:eng",
                "doc:1#viewer@group:eng#member",
                "doc:1#viewer@group:eng2#member",
                "doc:1#viewer@user:*",
                "doc:1#viewer@user:tom",
            ]
            assert texts(reader.relationships("doc", "1", "editor")) == ["doc:1#editor@user:ann"]
            assert texts(reader.relationships("doc", "nothing", "viewer")) == []

    def test_subject_sets_returns_only_subject_sets_sorted(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            assert texts(reader.subject_sets("doc", "1", "viewer")) == [
                "doc:1#viewer@group:eng#member",
                "doc:1#viewer@group:eng2#member",
            ]
            assert texts(reader.subject_sets("doc", "1", "editor")) == []
            assert texts(reader.subject_sets("doc", "nothing", "viewer")) == []

    @pytest.mark.parametrize("size", [3, 58, 59, 300])  # 58 + 6 = 64 relationships: the SQLite store's OBJECT_ROWS
    def test_reads_agree_for_objects_of_any_size(self, store: Store, clock: FakeClock, size: int) -> None:
        """Small and large objects (a backend may read a small object whole) give the same answers, at the
        head and at an older revision, with deleted and expired relationships hidden, asked in any order."""
        users = [f"doc:big#viewer@user:u{i:03d}" for i in range(size)]
        sets = [f"doc:big#viewer@group:g{i}#member" for i in range(3)]
        soon = (clock.now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        first = store.write([touch(t) for t in users + sets + ["doc:big#owner@user:ann", "doc:big#viewer@user:*",
                                                              f"doc:big#viewer@user:late[expiration:{soon}]"]])
        second = store.write([delete(users[0]), delete(sets[1]), touch("doc:big#viewer@group:g9#member")])
        clock.advance(minutes=10)  # user:late expires
        for revision, want_users, want_sets in (
            (first, users, sets),
            (second, users[1:], [sets[0], sets[2], "doc:big#viewer@group:g9#member"]),
        ):
            doc = ObjectRef("doc", "big")
            with store.snapshot(revision) as reader:
                for _ in range(2):  # the second round answers from whatever the first one read
                    assert texts(reader.subject_sets(doc.type, doc.id, "viewer")) == want_sets
                    assert texts(reader.relationships(doc.type, doc.id, "viewer")) == sorted(
                        want_sets + want_users + ["doc:big#viewer@user:*"], key=lambda t: rel(t).subject)
                    assert texts(reader.relationships(doc.type, doc.id, "owner")) == ["doc:big#owner@user:ann"]
                    assert texts(found(reader, doc, "viewer", "user", "u001", None)) == ["doc:big#viewer@user:u001"]
                    assert texts(found(reader, doc, "viewer", "user", "u000", None)) == (
                        ["doc:big#viewer@user:u000"] if revision == first else [])
                    assert texts(found(reader, doc, "viewer", "user", "late", None)) == []
                    assert texts(found(reader, doc, "viewer", "group", "g0", "member")) == [sets[0]]
                    assert texts(found(reader, doc, "viewer", "group", "g0", None)) == []
                    assert texts(found(reader, doc, "owner", "user", "u001", None)) == []
                    assert_reads_agree(reader, doc, ["viewer", "owner", "editor"],
                                       [("user", "u001", None), ("user", "u000", None), ("user", "late", None),
                                        ("user", "*", None), ("group", "g0", "member"), ("group", "g0", None)])

    def test_reads_return_rows_with_named_fields(self, loaded: Store) -> None:
        """relationship()/relationships()/subject_sets() (the evaluator's reads) return the stored rows, in
        subject order, and agree with each other."""
        with loaded.snapshot() as reader:
            assert list(reader.relationships("doc", "1", "editor")) == [
                Row("doc", "1", "editor", "user", "ann", "", None, None, None)]
            assert list(reader.subject_sets("doc", "1", "viewer")) == [
                Row("doc", "1", "viewer", "group", "eng", "member", None, None, None),
                Row("doc", "1", "viewer", "group", "eng2", "member", None, None, None)]
            assert reader.relationship("doc", "1", "viewer", "user", "tom", "") == Row(
                "doc", "1", "viewer", "user", "tom", "", None, None, None)
            assert reader.relationship("doc", "1", "viewer", "group", "eng", "") != reader.relationship(
                "doc", "1", "viewer", "group", "eng", "member")
            for doc in (DOC1, ObjectRef("doc", "readme"), ObjectRef("doc", "nothing")):
                assert_reads_agree(reader, doc, ["viewer", "editor", "owner"],
                                   [("user", "tom", None), ("user", "*", None), ("group", "eng", "member")])

    def test_rows_carry_caveats_and_expiration(self, store: Store, clock: FakeClock) -> None:
        later = (clock.now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        texts_in = ['doc:c#viewer@user:tom[level_ok:{"need":2}]', f"doc:c#viewer@user:ann[expiration:{later}]"]
        store.write([touch(t) for t in texts_in])
        with store.snapshot() as reader:
            found = sorted(str(row.relationship()) for row in reader.relationships("doc", "c", "viewer"))
            assert found == sorted(str(rel(t)) for t in texts_in)
            ann = reader.relationship("doc", "c", "viewer", "user", "ann", "")
            assert ann.expires_at_us == (rel(texts_in[1]).expiration - datetime(1970, 1, 1, tzinfo=timezone.utc)
                                         ) // timedelta(microseconds=1)
            tom = reader.relationship("doc", "c", "viewer", "user", "tom", "")
            assert (tom.caveat_name, tom.caveat_context) == ("level_ok", '{"need":2}')

    def test_relationship_sees_the_version_of_its_revision(self, store: Store) -> None:
        """A relationship replaced, deleted and written again: each revision sees its own version."""
        first = store.write([touch('doc:v#viewer@user:tom[level_ok:{"need":1}]')])
        second = store.write([touch('doc:v#viewer@user:tom[level_ok:{"need":2}]')])
        third = store.write([delete("doc:v#viewer@user:tom")])
        fourth = store.write([touch("doc:v#viewer@user:tom")])
        want = {first: [("level_ok", '{"need":1}')], second: [("level_ok", '{"need":2}')], third: [],
                fourth: [(None, None)]}
        for revision, expected in want.items():
            with store.snapshot(revision) as reader:
                got = [(r.caveat_name, r.caveat_context) for r in found(reader, ObjectRef("doc", "v"), "viewer",
                                                                        "user", "tom", None)]
                assert got == expected, revision
                assert [(r.caveat_name, r.caveat_context) for r in reader.relationships("doc", "v", "viewer")
                        ] == expected

    def test_lookup_matches_exactly_one_subject(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            assert texts(found(reader, DOC1, "viewer", "user", "tom", None)) == ["doc:1#viewer@user:tom"]
            assert texts(found(reader, DOC1, "viewer", "group", "eng", None)) == ["doc:1#viewer@group:eng"]
            assert texts(found(reader, DOC1, "viewer", "group", "eng", "member")) == ["doc:1#viewer@group:eng#member"]
            assert texts(found(reader, DOC1, "viewer", "group", "eng", "owner")) == []
            assert texts(found(reader, DOC1, "viewer", "user", "ann", None)) == []  # only user:* holds
            assert texts(found(reader, DOC1, "viewer", "user", "*", None)) == ["doc:1#viewer@user:*"]
            assert texts(found(reader, DOC1, "editor", "user", "tom", None)) == []

    def test_resources_finds_relationships_by_their_exact_subject(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            assert texts(resources(reader, "doc", "viewer", SubjectRef("user", "tom"))) == [
                "doc:1#viewer@user:tom",
                "doc:10#viewer@user:tom",
                "doc:readme#viewer@user:tom",
            ]
            assert texts(resources(reader, "doc", "viewer", SubjectRef("group", "eng", "member"))) == [
                "doc:1#viewer@group:eng#member"
            ]
            assert texts(resources(reader, "doc", "viewer", SubjectRef("group", "eng"))) == ["doc:1#viewer@group:eng"]
            assert texts(resources(reader, "folder", "viewer", SubjectRef("user", "tom"))) == [
                "folder:root#viewer@user:tom"
            ]
            assert texts(resources(reader, "doc", "viewer", SubjectRef("user", "*"))) == ["doc:1#viewer@user:*"]

    def test_values_read_back_equal_the_values_written(self, store: Store) -> None:
        written = rel('acme/doc:a/b|c-d=e+f_#viewer@acme/user:x#member[acme/cav:{"k":[1,"é"]}][expiration:2323-12-01T00:00:00.25Z]')
        store.write([Update(Operation.TOUCH, written)])
        with store.snapshot() as reader:
            (found_row,) = reader.read(EVERYTHING)
        found = found_row.relationship()
        assert found == written
        assert found.expiration == datetime(2323, 12, 1, 0, 0, 0, 250000, tzinfo=timezone.utc)
