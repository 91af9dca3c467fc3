#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The few libm functions the core needs, reached through Glibc rather than Foundation.
@inline(__always) func _log(_ x: Double) -> Double { log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { cos(x) }
@inline(__always) func _expf(_ x: Float) -> Float { expf(x) }
@inline(__always) func _sqrtf(_ x: Float) -> Float { x.squareRoot() }
@inline(__always) func _log1pf(_ x: Float) -> Float { log1pf(x) }
@inline(__always) func _pow(_ x: Double, _ y: Double) -> Double { pow(x, y) }

/// Logistic function, written to stay finite for any finite input.
@inline(__always) public func sigmoid(_ x: Float) -> Float {
    if x >= 0 {
        return 1 / (1 + _expf(-x))
    }
    let e = _expf(x)
    return e / (1 + e)
}

/// Monotonic clock in seconds (for the per-epoch timings in the history).
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
