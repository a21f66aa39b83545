#!/usr/bin/python3
"""The peer of bench-producer's drain: an outbox relay as a competent tutorial writes it.

psycopg2 + pika (Debian's python3-psycopg2, python3-pika), publisher confirms on, batches of
BATCH rows locked with SELECT ... FOR UPDATE SKIP LOCKED, each published as a persistent JSON
message to the same exchange and routing key as topicflow-producer, then marked published in
the same transaction once the broker confirmed it. pika's BlockingConnection, the client its
tutorials use, waits for the confirm of every basic_publish; a nack or an unroutable return
raises, the transaction rolls back and the batch is published again (at least once).

usage: relay.py [BATCH]   (URLs in RELAY_PG_URL and RELAY_AMQP_URL; runs until killed)
Run by bench-producer against the same outbox contents as topicflow-producer.
"""
import json
import os
import sys
import time

import pika
import psycopg2

FETCH = """
    SELECT id, source, aggregate_type, aggregate_id, event_type, version, payload, created_at,
           replay_of
      FROM topicflow.outbox
     WHERE published_at IS NULL
     ORDER BY id
     LIMIT %s
       FOR UPDATE SKIP LOCKED
"""
MARK = "UPDATE topicflow.outbox SET published_at = now() WHERE id = ANY(%s)"


def main():
    batch = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    db = psycopg2.connect(os.environ["RELAY_PG_URL"])
    broker = pika.BlockingConnection(pika.URLParameters(os.environ["RELAY_AMQP_URL"]))
    channel = broker.channel()
    channel.confirm_delivery()
    while True:
        with db:  # one transaction per batch: commit on success, rollback on any exception
            with db.cursor() as cur:
                cur.execute(FETCH, (batch,))
                rows = cur.fetchall()
                for (id_, source, aggregate, aggregate_id, event_type, version, payload,
                     created_at, replay_of) in rows:
                    body = {"id": id_, "type": event_type, "aggregate": aggregate,
                            "aggregate_id": aggregate_id, "version": version,
                            "occurred_at": created_at.isoformat(), "source": source,
                            "payload": payload}
                    if replay_of is not None:
                        body["replay_of"] = replay_of
                    channel.basic_publish(
                        exchange="topicflow.events",
                        routing_key=f"{aggregate}.{event_type}",
                        body=json.dumps(body),
                        properties=pika.BasicProperties(
                            content_type="application/json", delivery_mode=2,
                            message_id=str(id_), type=event_type,
                            timestamp=int(created_at.timestamp())),
                        mandatory=True)
                if rows:
                    cur.execute(MARK, ([r[0] for r in rows],))
        if not rows:
            time.sleep(0.1)


if __name__ == "__main__":
    main()
