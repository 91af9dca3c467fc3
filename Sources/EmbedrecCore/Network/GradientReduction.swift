/// How a batch's work is spread over the trainer's threads and its gradients added up: which
/// thread runs each chunk and steps each dense layer, and the dense gradients of the chunks
/// summed in a fixed order (two halves, then their sums), so that results do not depend on the
/// number of threads.
extension NetworkTrainer {
    /// Which thread steps each dense layer. A layer split by units between the threads had
    /// them share, in every row of its transposed kernel, the line at the boundary of their
    /// units, and each read the other's share of it in the next forward pass. So layers go whole
    /// to the least-loaded thread (by kernel size), largest first; a layer larger than 1.25
    /// times an even share of all of them (the tabular network's one hidden layer) is still
    /// split, as the threads would otherwise wait for its owner.
    static func denseStepOwners(network: Network, threads: Int) -> [Int?] {
        guard threads > 1 else { return network.nodes.map { $0.kind == .dense ? 0 : nil } }
        let size = network.nodes.map { n in n.kind == .dense ? n.units * network.widths[n.inputs[0]] : 0 }
        let total = size.reduce(0, +)
        var owners = [Int?](repeating: nil, count: network.nodes.count)
        var load = [Int](repeating: 0, count: threads)
        let split = size.indices.filter { size[$0] > 0 && 4 * size[$0] * threads > 5 * total }
        for j in split { for t in 0..<threads { load[t] += size[j] / threads } }
        for j in size.indices.filter({ size[$0] > 0 && !split.contains($0) }).sorted(by: { (size[$0], $1) > (size[$1], $0) }) {
            let t = load.indices.min { (load[$0], $0) < (load[$1], $1) }!
            owners[j] = t
            load[t] += size[j]
        }
        return owners
    }

    /// The thread that runs chunk `c`: each thread a contiguous run of chunks (so a thread's
    /// tile passes can share one `TileScratch`, and one thread runs a whole half below).
    /// Counted against `chunkCount`, not the chunks a short last batch uses, so the mapping
    /// never changes.
    @inline(__always)
    func thread(ofChunk c: Int) -> Int { c * team.size / chunkCount }

    /// The two halves of a batch's chunks whose dense gradients are summed first, each in chunk
    /// order into its first chunk's buffers; the second sum is then added to the first. Fixed
    /// by `chunksUsed` alone, so the result does not depend on the number of threads.
    ///
    /// Why halves: summed in one run over all chunks, every thread read the gradients of every
    /// chunk for its share of the units, half of them from the other core's cache. A half that
    /// one thread ran, it sums as
    /// soon as its chunks are done, from its own cache; the optimiser step then reads one
    /// half-sum across cores.
    func denseGradientHalves(chunksUsed: Int) -> (Range<Int>, Range<Int>) {
        let mid = min((chunkCount + 1) / 2, chunksUsed)
        return (0..<mid, mid..<chunksUsed)
    }

    /// Whether one thread ran every chunk of `half` (then it sums the half right after).
    func oneThreadRan(_ half: Range<Int>) -> Bool {
        half.isEmpty || thread(ofChunk: half.lowerBound) == thread(ofChunk: half.upperBound - 1)
    }

    /// Sums the dense gradients of each half of the chunks that thread `t` ran alone.
    func sumDenseGradients(ranBy t: Int, chunksUsed: Int) {
        let (low, high) = denseGradientHalves(chunksUsed: chunksUsed)
        for half in [low, high] where half.count > 1 && oneThreadRan(half) && thread(ofChunk: half.lowerBound) == t {
            for j in denseNodes {
                for c in half.dropFirst() { addDenseGradients(node: j, units: 0..<network.nodes[j].units, from: c, to: half.lowerBound) }
            }
        }
    }

    /// Adds chunk `c`'s gradients of dense node `j` for `units` (kernel rows and bias entries)
    /// to chunk `c0`'s.
    @inline(__always)
    func addDenseGradients(node j: Int, units: Range<Int>, from c: Int, to c0: Int) {
        let stride = TileKernels.padded(network.widths[network.nodes[j].inputs[0]])
        let w = tiles[c].kernelGradients[j]!.base, b = tiles[c].biasGradients[j]!.base
        let w0 = tiles[c0].kernelGradients[j]!.base, b0 = tiles[c0].biasGradients[j]!.base
        Kernels.axpy(w0 + units.lowerBound * stride, w + units.lowerBound * stride, units.count * stride, 1)
        Kernels.axpy(b0 + units.lowerBound, b + units.lowerBound, units.count, 1)
    }
}
