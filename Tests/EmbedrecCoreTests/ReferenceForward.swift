@testable import EmbedrecCore

/// The forward pass written the plain way, one example at a time on one flat buffer (each
/// node's output at `offsets[j]`), without dropout: the reference the tile passes are checked
/// against.
extension Network {
    /// The output for one example; a row of -1 (unknown id) reads as a zero vector.
    func referenceOutput(user: Int, item: Int) -> Float {
        let act = UnsafeMutablePointer<Float>.allocate(capacity: activationSize)
        defer { act.deallocate() }
        let nodes = compiled
        for j in 0..<nodes.count {
            let n = nodes[j]
            let out = act + n.offset
            let w = n.width
            switch n.kind {
            case .embedding:
                let row = n.side == 0 ? user : item
                if row < 0 {
                    out.update(repeating: 0, count: w)
                } else {
                    out.update(from: n.weights! + row &* w, count: w)
                }
            case .dropout:
                out.update(from: act + nodes[n.in0].offset, count: w)
            case .product:
                let a = act + nodes[n.in0].offset, b = act + nodes[n.in1].offset
                for k in 0..<w { out[k] = a[k] * b[k] }
            case .dot:
                out[0] = Kernels.dot(act + nodes[n.in0].offset, act + nodes[n.in1].offset, n.fanIn)
            case .concat:
                var at = 0
                for k in 0..<n.inputCount {
                    let i = nodes[n.input(k)]
                    (out + at).update(from: act + i.offset, count: i.width)
                    at += i.width
                }
            case .dense:
                let x = act + nodes[n.in0].offset, fanIn = n.fanIn
                let W = n.weights!, b = n.bias!
                for u in 0..<w {
                    var z = b[u] + Kernels.dot(W + u &* fanIn, x, fanIn)
                    switch n.activation {
                    case .linear: break
                    case .relu: z = max(z, 0)
                    case .sigmoid: z = sigmoid(z)
                    }
                    out[u] = z
                }
            case .scaledSigmoid:
                let x = act + nodes[n.in0].offset
                for k in 0..<w { out[k] = n.lo + n.span * sigmoid(x[k]) }
            }
        }
        return act[nodes[nodes.count - 1].offset]
    }
}
