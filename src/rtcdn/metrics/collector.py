"""Collector: the node's figures as Prometheus metric families, read from the live objects at scrape time.

Nothing is recorded on the media path for it: the core's counters (:meth:`StreamManager.totals`),
its media sessions, the WebRTC layer's :class:`~rtcdn.webrtc.peer.WebRtcCounters`, the relays and
the balancer's edge health are read when Prometheus asks. Counters only grow (the core adds
ended streams' and players' figures to its own totals), so ``rate()`` works across streams.

Relays and the balancer are seen through the small read-only protocols below, so this package
depends on neither ``relay/`` nor ``cdn/`` (the import layout of tests/test_layout.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from ..stream import MediaState, StreamManager, StreamState
from ..stream.manager import FIRST_KEYFRAME_BUCKETS
from ..webrtc.peer import WebRtcCounters

PUBLISH_PROTOCOLS = ("wcs", "whip", "relay-pull")
"Always reported (0 when idle), so the series exist from the first scrape."
PLAY_PROTOCOLS = ("wcs", "whep", "relay-push")
_OVER = (MediaState.ENDED, MediaState.FAILED)


class RelayView(Protocol):
    """What the metrics read of a :class:`rtcdn.relay.Relay`."""

    @property
    def direction(self) -> str: ...

    @property
    def status(self) -> str: ...


class NodeView(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def local(self) -> bool: ...


class HealthView(Protocol):
    @property
    def node(self) -> NodeView: ...

    @property
    def up(self) -> bool: ...


class BalancerView(Protocol):
    """What the metrics read of a :class:`rtcdn.cdn.Balancer`: edge health by node id."""

    @property
    def health(self) -> Mapping[str, HealthView]: ...


class Collector:
    """A prometheus_client custom collector over one server's components.

    Lifecycle: made by :class:`~rtcdn.metrics.MetricsEndpoint` with the server's components and
    registered on its own ``CollectorRegistry``; :meth:`collect` runs once per scrape; it holds no
    resources, so there is nothing to close.
    """

    def __init__(
        self,
        streams: StreamManager,
        counters: WebRtcCounters,
        relays: Iterable[RelayView] = (),
        balancer: BalancerView | None = None,
        wcs_sessions: Sized = (),
    ) -> None:
        self.streams = streams
        self.counters = counters
        self.relays = relays
        self.balancer = balancer
        self.wcs_sessions = wcs_sessions

    def collect(self) -> Iterator[Metric]:
        yield from self._streams()
        yield from self._traffic()
        yield from self._webrtc()
        yield from self._relays()
        yield from self._edges()

    def _streams(self) -> Iterator[Metric]:
        states = Counter(s.state for s in self.streams)
        streams = GaugeMetricFamily("rtcdn_streams", "Streams on this node, by state", labels=["state"])
        for state in (StreamState.PENDING, StreamState.LIVE):
            streams.add_metric([state.value], states[state])
        yield streams
        publishers: Counter[str] = Counter({p: 0 for p in PUBLISH_PROTOCOLS})
        players: Counter[str] = Counter({p: 0 for p in PLAY_PROTOCOLS})
        for record in self.streams.sessions.records():
            if record.state not in _OVER:
                (publishers if record.published else players)[record.protocol] += 1
        for name, counts, what in (
            ("rtcdn_publishers", publishers, "Publishers (connecting or publishing), by protocol"),
            ("rtcdn_players", players, "Players (connecting or playing), by protocol"),
        ):
            family = GaugeMetricFamily(name, what, labels=["protocol"])
            for protocol, count in sorted(counts.items()):
                family.add_metric([protocol], count)
            yield family
        yield GaugeMetricFamily(
            "rtcdn_wcs_sessions", "Sessions on the WCS WebSocket", value=len(self.wcs_sessions)
        )

    def _traffic(self) -> Iterator[Metric]:
        t = self.streams.totals()
        for name, what, value in (
            ("rtcdn_rtp_packets_in", "RTP packets received from publishers", t.packets_in),
            ("rtcdn_rtp_bytes_in", "Bytes of RTP packets received from publishers", t.octets_in),
            ("rtcdn_rtp_packets_out", "RTP packets sent to players (NACK resends included)", t.packets_out),
            ("rtcdn_rtp_bytes_out", "Bytes of RTP packets sent to players", t.octets_out),
            ("rtcdn_nack_resent_packets", "Packets resent to serve players' NACKs", t.nacks_served),
            ("rtcdn_plis_sent", "Keyframe requests (PLI) sent to publishers", t.plis),
            (
                "rtcdn_keyframes_spared",
                "Players that started on the cached GOP: keyframe requests to publishers avoided",
                t.keyframes_spared,
            ),
        ):
            yield CounterMetricFamily(name, what, value=value)
        cumulative, buckets = 0, []
        bounds = [str(b) for b in FIRST_KEYFRAME_BUCKETS] + ["+Inf"]
        for bound, count in zip(bounds, t.first_keyframe_counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "rtcdn_first_keyframe_seconds",
            "Seconds a new player waited for its first keyframe",
            buckets=buckets,
            sum_value=t.first_keyframe_sum,
        )

    def _webrtc(self) -> Iterator[Metric]:
        c = self.counters
        for name, what, value in (
            ("rtcdn_rtp_packets_dropped", "RTP packets to players dropped: send buffer full", c.send_dropped),
            ("rtcdn_ice_failures", "WebRTC peers whose ICE did not connect in time", c.ice_failures),
            ("rtcdn_dtls_failures", "WebRTC peers whose DTLS handshake failed after ICE", c.dtls_failures),
        ):
            yield CounterMetricFamily(name, what, value=value)

    def _relays(self) -> Iterator[Metric]:
        counts = Counter((r.direction, r.status) for r in self.relays)
        family = GaugeMetricFamily(
            "rtcdn_relays",
            "Relays by direction and status (finished ones until replaced or terminated)",
            labels=["direction", "status"],
        )
        for (direction, status), count in sorted(counts.items()):
            family.add_metric([direction, status], count)
        yield family

    def _edges(self) -> Iterator[Metric]:
        if self.balancer is None:
            return
        edges = [h for h in self.balancer.health.values() if not h.node.local]
        by_state = GaugeMetricFamily("rtcdn_cdn_edges", "CDN edges by health", labels=["state"])
        by_state.add_metric(["up"], sum(h.up for h in edges))
        by_state.add_metric(["down"], sum(not h.up for h in edges))
        yield by_state
        each = GaugeMetricFamily("rtcdn_cdn_edge_up", "1 if the CDN edge answers its probes", labels=["edge"])
        for health in edges:
            each.add_metric([health.node.id], int(health.up))
        yield each
