@testable import EmbedrecCore

/// The forward pass written the plain way, one example at a time on one flat buffer (node j's
/// output at the sum of the widths before it), without dropout: the reference the tile passes are checked
/// against.
extension Network {
    /// The output for one example; a row of -1 (unknown id) reads as a zero vector.
    func referenceOutput(user: Int, item: Int) -> Float {
        var offsets: [Int] = [], total = 0
        for w in widths { offsets.append(total); total += w }
        let act = UnsafeMutablePointer<Float>.allocate(capacity: total)
        defer { act.deallocate() }
        let nodes = compiled
        for j in 0..<nodes.count {
            let n = nodes[j]
            let out = act + offsets[j]
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
                out.update(from: act + offsets[n.in0], count: w)
            case .product:
                let a = act + offsets[n.in0], b = act + offsets[n.in1]
                for k in 0..<w { out[k] = a[k] * b[k] }
            case .dot:
                out[0] = Kernels.dot(act + offsets[n.in0], act + offsets[n.in1], n.fanIn)
            case .concat:
                var at = 0
                for k in 0..<n.inputCount {
                    let i = nodes[n.input(k)]
                    (out + at).update(from: act + offsets[n.input(k)], count: i.width)
                    at += i.width
                }
            case .dense:
                let x = act + offsets[n.in0], fanIn = n.fanIn
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
                let x = act + offsets[n.in0]
                for k in 0..<w { out[k] = n.lo + n.span * sigmoid(x[k]) }
            }
        }
        return act[offsets[nodes.count - 1]]
    }
}
