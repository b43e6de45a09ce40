"""An independent MQTT subscriber for the compose test: records the id of every event the broker
accepted on edgex/events/#, then checks that core-data stored each of them.

  witness.py collect HOST PORT CLIENT_ID OUT_FILE   until SIGTERM; QoS 1, persistent session
  witness.py verify CORE_DATA_URL IDS_FILE          exit 1 listing the ids core-data lacks
"""

import base64
import json
import signal
import sys
import time
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt


def event_id(payload):
    """The id of the event in an EdgeX v3 message envelope (JSON payload, or base64 JSON)."""
    envelope = json.loads(payload)
    inner = envelope["payload"]
    if isinstance(inner, str):
        inner = json.loads(base64.b64decode(inner))
    return inner["event"]["id"]


def collect(host, port, client_id, out_path):
    out = open(out_path, "a", buffering=1)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))

    def on_connect(client, _userdata, _flags, reason, _props):
        if reason.is_failure:
            print(f"witness: connect refused: {reason}", file=sys.stderr)
            return
        client.subscribe("edgex/events/#", qos=1)

    def on_message(_client, _userdata, msg):
        try:
            out.write(event_id(msg.payload) + "\n")
        except (ValueError, KeyError, TypeError) as error:
            print(f"witness: unreadable message on {msg.topic}: {error}", file=sys.stderr)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(host, int(port), keepalive=30)
    client.loop_start()
    while not stop:
        time.sleep(0.2)
    client.loop_stop()
    client.disconnect()
    out.close()


def verify(core_data_url, ids_path):
    ids = sorted({line.strip() for line in open(ids_path) if line.strip()})
    missing = []
    for event in ids:
        try:
            with urllib.request.urlopen(f"{core_data_url}/api/v3/event/id/{event}", timeout=10) as response:
                if response.status != 200:
                    missing.append(event)
        except urllib.error.HTTPError:
            missing.append(event)
    print(f"witnessed {len(ids)} events, {len(missing)} missing from core-data")
    if missing:
        print("missing: " + " ".join(missing[:20]), file=sys.stderr)
        sys.exit(1)
    if not ids:
        print("the witness saw no event", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1:2] == ["collect"] and len(sys.argv) == 6:
        collect(*sys.argv[2:])
    elif sys.argv[1:2] == ["verify"] and len(sys.argv) == 4:
        verify(*sys.argv[2:])
    else:
        sys.exit(__doc__)
