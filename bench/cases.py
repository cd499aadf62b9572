"""The bench's cases, shared by bench/bench.py (which runs them) and bench/report.py
(which writes their sections): the keys of latest.json each case writes, in the order
the cases run, and the section titles."""

CASE_KEYS = {"case1": ["case1"], "case2": ["case2"], "case45": ["case45"], "case3": ["case3"],
             "net": ["net_info", "net"], "tti": ["tti"], "fork": ["fork"], "qemu": ["qemu"],
             "qfork": ["qfork"], "pool": ["pool"], "pool_burst": ["pool_burst"],
             "pool_over": ["pool_over"], "pool_size": ["pool_size"], "pool_refill": ["pool_refill"],
             "debian": ["debian"], "netpol": ["netpol"], "io": ["io"], "images": ["images"]}
POOL_CASES = ["pool", "pool_burst", "pool_over", "pool_size", "pool_refill"]
ENGINE_CASES = ["case1", "tti", "debian"]  # the cases docker and podman take part in

TITLES = {"case1": ["1. Create to running, one at a time"],
          "case2": ["2. Burst: N created at once"],
          "case3": ["3. Registry micro-benchmark (ns/op)"],
          "case45": ["4. File API overhead", "5. Scaling: create latency and daemon memory vs live sandboxes"],
          "net": ["6. Networking: create with networking on vs off (issue 4)"],
          "tti": ["7. Time to interactive (issue 8)"],
          "fork": ["8. Fork, ns backend (issue 9)"],
          "qemu": ["9. qemu backend: create to agent hello (issue 5)"],
          "qfork": ["10. qemu live fork and standby (issue 9)"],
          "pool": ["11. Warm pool: create and time to first output, one at a time (issue 20)"],
          "pool_burst": ["12. Warm pool: a burst against a full pool (issue 20)"],
          "pool_over": ["13. Warm pool: a burst larger than the pool (issue 20)"],
          "pool_size": ["14. Warm pool: claim latency vs pool size (issue 20)"],
          "pool_refill": ["15. Warm pool: refill rate and what an idle member costs (issue 20)"],
          "debian": ["16. A real image: Debian 12 with python3 (issue 16)"],
          "netpol": ["17. Network policy: applying a rule, and throughput with 0, 10 and 1000 rules (issue 18)"],
          "io": ["18. exec round trip, stdout and file throughput, ns and qemu (issue 17)"],
          "images": ["19. Images: an OCI import of the Debian root, a second image on its base, and a VM of it (issue 16)"]}
