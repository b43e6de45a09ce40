"""An MQTT device as EdgeX's device-mqtt expects one (paho-mqtt 2.x), driven over stdin.

It keeps a state (resource name -> JSON value) and:
- answers commands published on {prefix}command/{device}/{resource}/{get|set}/{uuid}: a get
  with {"resource": value} on {prefix}command/response/{uuid}, a set by storing the value of
  the payload's {"resource": value} and answering {} (unless told to stay silent);
- publishes readings when told to, on {prefix}incoming/data/{device}/{source}.

Prints "subscribed" each time it has (re)connected and subscribed, "set RESOURCE JSON" for every set it takes,
"answered METHOD RESOURCE" for every answer, and "done ..." after each stdin command.

stdin commands, one per line:
  publish SOURCE JSON        publish JSON on incoming/data/{device}/SOURCE
  raw TOPIC PAYLOAD          publish PAYLOAD (text) on {prefix}TOPIC
  silent on|off              stop/start answering commands
  flood SOURCE RESOURCE N    publish N readings {"RESOURCE": i} flat out (QoS 1) and wait for
                             the broker's acks; prints "done flood N SECONDS"
  quit
"""

import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--device", required=True)
    parser.add_argument("--prefix", default="", help="prepended to every topic, e.g. 'test-1/'")
    parser.add_argument("--state", default="{}", help="initial state, a JSON object")
    parser.add_argument("--qos", type=int, default=1)
    args = parser.parse_args()

    state = json.loads(args.state)
    silent = threading.Event()
    out_lock = threading.Lock()
    command_base = f"{args.prefix}command/{args.device}"

    def say(line):
        with out_lock:
            print(line, flush=True)

    def on_connect(client, userdata, flags, reason_code, properties):
        client.subscribe(f"{command_base}/#", qos=args.qos)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        say("subscribed")

    def on_message(client, userdata, message):
        levels = message.topic[len(command_base) + 1:].split("/")
        if len(levels) != 3:
            return
        resource, method, uuid = levels
        if silent.is_set():
            return
        if method == "set":
            try:
                value = json.loads(message.payload)[resource]
            except (ValueError, KeyError, TypeError):
                value = None
            if value is not None:
                state[resource] = value
                say(f"set {resource} {json.dumps(value)}")
            answer = {}
        else:
            answer = {resource: state[resource]} if resource in state else {}
        client.publish(f"{args.prefix}command/response/{uuid}", json.dumps(answer), qos=args.qos)
        say(f"answered {method} {resource}")

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{args.prefix}{args.device}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    client.connect_async(args.host, args.port, keepalive=30)
    client.loop_start()

    for line in sys.stdin:
        words = line.strip().split(" ", 2)
        if not words or not words[0]:
            continue
        command = words[0]
        if command == "quit":
            break
        if command == "publish":
            topic = f"{args.prefix}incoming/data/{args.device}/{words[1]}"
            client.publish(topic, words[2], qos=args.qos).wait_for_publish(10)
        elif command == "raw":
            client.publish(f"{args.prefix}{words[1]}", words[2] if len(words) > 2 else "", qos=args.qos).wait_for_publish(10)
        elif command == "silent":
            if words[1] == "on":
                silent.set()
            else:
                silent.clear()
        elif command == "flood":
            source, rest = words[1], words[2].split(" ")
            resource, count = rest[0], int(rest[1])
            topic = f"{args.prefix}incoming/data/{args.device}/{source}"
            started = time.monotonic()
            infos = [client.publish(topic, json.dumps({resource: i}), qos=args.qos) for i in range(count)]
            for info in infos:
                info.wait_for_publish(60)
            say(f"done flood {count} {time.monotonic() - started:.3f}")
            continue
        say(f"done {command}")

    client.loop_stop()
    client.disconnect()


if __name__ == "__main__":
    main()
