"""A Modbus server for device-modbus's tests (pymodbus 3.16).

Serves units with four tables (coils, discrete inputs, holding and input registers) of
addresses 0..size-1, all zero unless --init says otherwise, over TCP (Modbus TCP framing, or
RTU framing with --framer rtu) or a serial line (--serial PATH, RTU). Prints "READY" once
listening, then one line per request it receives:
    REQ <unit> <function code> <address> <count>
so that a test can count requests. --holes leaves register addresses out of the holding and
input registers (reading them answers exception 2, illegal data address); --fail-units makes
units answer every request with exception 4 (server device failure).

    python modbus_server.py --port 5020 --units 1,2 --init '{"hr": {"0": [1, 2]}, "co": {"3": [true]}}'
"""

import argparse
import asyncio
import json
import sys

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def ranges(size, holes):
    """Contiguous runs of 0..size-1 without the addresses in holes."""
    runs, start = [], None
    for addr in range(size + 1):
        inside = addr < size and addr not in holes
        if inside and start is None:
            start = addr
        elif not inside and start is not None:
            runs.append((start, addr - start))
            start = None
    return runs


def table(size, init, holes, bits):
    """The SimData blocks of one table."""
    values = [False if bits else 0] * size
    for start, vals in (init or {}).items():
        for i, v in enumerate(vals):
            values[int(start) + i] = bool(v) if bits else int(v) & 0xFFFF
    kind = DataType.BITS if bits else DataType.REGISTERS
    return [
        SimData(start, values=values[start : start + count], datatype=kind)
        for start, count in ranges(size, holes)
    ]


def trace(sending, pdu):
    """Logs every request received."""
    if not sending:
        print(f"REQ {pdu.dev_id} {pdu.function_code} {pdu.address} {pdu.count}", flush=True)
    return pdu


async def fail(*_args):
    """Answers exception 4 (server device failure)."""
    return ExcCodes.DEVICE_FAILURE


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--serial", default="")
    parser.add_argument("--framer", choices=["socket", "rtu"], default="socket")
    parser.add_argument("--units", default="1")
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--init", default="{}")
    parser.add_argument("--holes", default="")
    parser.add_argument("--fail-units", default="")
    args = parser.parse_args()

    init = json.loads(args.init)
    holes = {int(h) for h in args.holes.split(",") if h}
    failing = {int(u) for u in args.fail_units.split(",") if u}
    devices = []
    for unit in (int(u) for u in args.units.split(",") if u):
        simdata = (
            table(args.size, init.get("co"), set(), True),
            table(args.size, init.get("di"), set(), True),
            table(args.size, init.get("hr"), holes, False),
            table(args.size, init.get("ir"), holes, False),
        )
        devices.append(
            SimDevice(
                id=unit,
                simdata=simdata,
                use_bit_addressing=True,
                action=fail if unit in failing else None,
            )
        )

    async def serve():
        if args.serial:
            server = ModbusSerialServer(
                devices, framer=FramerType.RTU, port=args.serial, baudrate=19200, trace_pdu=trace
            )
        else:
            framer = FramerType.RTU if args.framer == "rtu" else FramerType.SOCKET
            server = ModbusTcpServer(devices, framer=framer, address=("127.0.0.1", args.port), trace_pdu=trace)
        await server.serve_forever(background=True)
        print("READY", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
