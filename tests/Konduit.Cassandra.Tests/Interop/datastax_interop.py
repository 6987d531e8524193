"""The outside client of the Cassandra interop test (issue 14): Debian's DataStax Python driver (python3-cassandra).

  write HOST PORT KEYSPACE QUEUE BUCKET_MS SHARDS   writes rows as another application would, prints them (JSON)
  read  HOST PORT KEYSPACE QUEUE TASK_ID...          reads the rows Konduit wrote, prints them (JSON)

Run with /usr/bin/python3 (the driver is a Debian package). Timeuuids are built from exact 100-ns timestamps, as a
driver's uuid_from_time makes them, with a random clock sequence and node.
"""
import json
import random
import sys
import time
import uuid

from cassandra.cluster import Cluster
from cassandra.query import SimpleStatement
from cassandra import ConsistencyLevel

GREGORIAN_OFFSET = 0x01B21DD213814000  # 100-ns ticks from 1582-10-15 to 1970-01-01


def timeuuid(unix_ticks):
    ts = unix_ticks + GREGORIAN_OFFSET
    clock_seq = random.getrandbits(14)
    return uuid.UUID(fields=(ts & 0xFFFFFFFF, (ts >> 32) & 0xFFFF, ((ts >> 48) & 0x0FFF) | 0x1000,
                             0x80 | (clock_seq >> 8), clock_seq & 0xFF, random.getrandbits(48)))


def unix_ticks(u):
    return u.time - GREGORIAN_OFFSET


def connect(host, port, keyspace):
    cluster = Cluster([host], port=int(port), protocol_version=3, connect_timeout=20, control_connection_timeout=20)
    return cluster, cluster.connect(keyspace)


def write(host, port, keyspace, queue, bucket_ms, shards):
    cluster, session = connect(host, port, keyspace)
    bucket_ms, shards = int(bucket_ms), int(shards)
    by_queue = session.prepare(
        "INSERT INTO task_events_by_queue (queue, bucket, shard, event_id, task_id, kind, attempt, lease_token, tenant, worker)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    by_task = session.prepare(
        "INSERT INTO task_events_by_task (task_id, event_id, queue, kind, attempt, lease_token, tenant, worker)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    for statement in (by_queue, by_task):
        statement.consistency_level = ConsistencyLevel.ONE
    ms = int(time.time() * 1000) - 120_000
    ms -= ms % 1000
    task = uuid.uuid4()
    rows = []
    # Five events in one millisecond at sub-millisecond ticks 12 bits cannot hold, then three in later ones:
    # NULL attempt and lease token, an unknown kind (42), a tenant and a worker.
    plan = [(ms, 1000, 0), (ms, 5000, 1), (ms, 6000, 3), (ms, 7000, 5), (ms, 9999, 1),
            (ms + 1, 4096, 42), (ms + 2, 0, 3), (ms + 3, 8000, 9)]
    for i, (at, sub, kind) in enumerate(plan):
        event_id = timeuuid(at * 10_000 + sub)
        attempt, token = (None, None) if i == 2 else (1, 7)
        tenant, worker = ("tenant-a", "py-worker") if i % 2 else (None, None)
        bucket = at - at % bucket_ms
        session.execute(by_queue, (queue, bucket, i % shards, event_id, task, kind, attempt, token, tenant, worker))
        session.execute(by_task, (task, event_id, queue, kind, attempt, token, tenant, worker))
        rows.append({"task_id": str(task), "ticks": unix_ticks(event_id), "kind": kind, "attempt": attempt,
                     "lease_token": token, "tenant": tenant, "worker": worker})
    cluster.shutdown()
    print(json.dumps({"from_ms": ms - 60_000, "rows": rows}))


def read(host, port, keyspace, queue, *task_ids):
    cluster, session = connect(host, port, keyspace)
    out = []
    for task_id in task_ids:
        statement = SimpleStatement("SELECT task_id, event_id, queue, tenant, kind, attempt, lease_token, worker, error"
                                    " FROM task_events_by_task WHERE task_id = %s", consistency_level=ConsistencyLevel.ONE)
        for row in session.execute(statement, (uuid.UUID(task_id),)):
            out.append({"task_id": str(row.task_id), "ticks": unix_ticks(row.event_id), "queue": row.queue,
                        "tenant": row.tenant, "kind": row.kind, "attempt": row.attempt, "lease_token": row.lease_token,
                        "worker": row.worker, "error": row.error})
    cluster.shutdown()
    print(json.dumps(out))


if __name__ == "__main__":
    {"write": write, "read": read}[sys.argv[1]](*sys.argv[2:])
