public enum Loss: Int32 {
    case mse = 0
    case mae = 1
    /// Binary cross-entropy on the output taken as a logit (prediction = sigmoid(output)).
    case bce = 2
}

/// Mini-batch training of a `Network` with Adam (lazy, row-wise for embeddings) or SGD.
///
/// A batch is cut into a fixed number of chunks that depends only on the batch size; chunks run
/// in parallel, each through its own `TilePass` (forward and backward over up to `tileRows`
/// examples at a time, dense layers as matrix products) with its own dense gradients, which are
/// added up in a fixed order (`denseGradientHalves`). Embedding gradients are kept per example
/// and summed per touched row in example order. The result is therefore the same for any thread
/// count. Dropout masks are hashes of (seed, step, position, node, entry) (`DropoutMask`), for
/// the same reason. With Adam, each side's embedding rows train in records (`SideRecords`),
/// copied into the network's tables after every epoch.
///
/// With `negatives > 0` (implicit data, BCE) every training pair is a positive, and each epoch
/// draws that many negatives per positive uniformly from the items the user has not interacted
/// with.
public final class NetworkTrainer: Trainer {
    public let network: Network
    public let data: RatingSet
    public var nUsers: Int { network.nUsers }
    let options: TrainOptions
    let loss: Loss
    let negatives: Int
    public let cancel = CancelFlag()
    public let progress = EpochProgress()
    public private(set) var epochsDone = 0
    private var step = 0
    private let totalSteps: Int
    private let batch: Int
    private let chunkCount: Int
    /// Examples a tile pass holds: small enough that a tile's values stay in the core's cache.
    static let tileRows = 64
    private let tiles: [TilePass]
    /// Per tile pass: dL/d(output) of its current tile.
    private let outputGradients: [Buffer<Float>]
    private let paddedWeights: PaddedWeights
    /// The batch's distinct user rows and item rows.
    /// Per thread of the team, its own copy of the batch's distinct user rows and item rows:
    /// every thread gives the whole batch its slots (the same slots), and its optimiser step
    /// reads only its own copy. With one copy per table, written by one thread and half read by
    /// the other, each batch's slot arrays went back and forth between the cores' caches (MF
    /// network, 2 threads, per thread and epoch: one table's slots 7.8 ms, against 2 ms for
    /// the same calls alone; now both tables' 10.5 ms, and the optimiser step 4 ms shorter).
    private let userRows, itemRows: [BatchRows]
    /// Per embedding node outside the side records: each example's gradient of its row (batch ×
    /// padded width), written there by the tile passes. The first example of each touched row
    /// then accumulates the row's total.
    private let exampleGradients: [Buffer<Float>?]
    /// Per side (0 users, 1 items), with Adam: the side's embedding rows and their moments in
    /// records (`SideRecords`), when its nodes can share a joint row; else nil.
    let sideRecords: [SideRecords?]
    /// Per side with records: each example's gradient of its joint row (batch × padded joint
    /// width), every node's entries at its offset.
    private let sideGradients: [Buffer<Float>?]
    /// Per embedding node: where the tile passes write the batch's example gradients of its
    /// rows (example b's at `base + b · stride`: its own array, or its entries of its side's
    /// joint rows). Raw pointers, worked out once: the chunks read them on every thread.
    private let gradientRows: [(base: UnsafeMutablePointer<Float>, stride: Int)?]
    private let embeddingNodes: [Int]
    private let denseNodes: [Int]
    /// Per dense node: the thread that steps all of it, or nil when every thread steps a
    /// share of its units (`denseStepOwners`).
    private let denseOwners: [Int?]
    /// Per example of the batch: the thread that runs its chunk (see `BatchUpdate`); the team
    /// has at most 8 threads.
    private let exampleThread: Buffer<UInt8>
    /// Runs each batch's chunks and optimiser step.
    private let team: WorkerTeam
    /// Adam's moments of each dense node's kernel.
    private let moments: [(m: Buffer<Float>, v: Buffer<Float>)?]
    /// Adam's moments of each embedding node's rows outside the side records, a row's pair side
    /// by side: row r's first moments at r·2w, its second moments right after (w each). A step
    /// fetches one run of cache lines per row instead of two, and a bias row's two moments
    /// share one line.
    private let rowMoments: [Buffer<Float>?]
    private let biasMoments: [(m: Buffer<Float>, v: Buffer<Float>)?]
    private var rng: Xoshiro256
    /// When set, only user-side embedding rows from this row on are updated; every other
    /// parameter stays as it is (folding new users into a trained network).
    public var firstTrainableUser: Int? = nil
    /// Positives per user, sorted (CSR), for rejecting sampled negatives.
    private let seenIndptr: Buffer<Int>?
    private let seenItems: Buffer<Int32>?
    /// The epoch's examples (positives and sampled negatives), shuffled. Without negatives this
    /// is `data` itself, reshuffled in place each epoch: no second copy of the ratings.
    private let epoch: RatingSet

    /// `sideRecords`: train each side's embedding rows in records when Adam and the network
    /// allow it (`SideRecords`); off only to compare with separate tables in tests.
    public init(network: Network, data: RatingSet, loss: Loss, negatives: Int, options: TrainOptions,
                sideRecords useRecords: Bool = true) throws {
        try options.validate()
        guard data.count > 0 else { throw CoreError.invalid("there are no training ratings") }
        guard (0...100).contains(negatives) else { throw CoreError.invalid("negatives must be in 0...100, got \(negatives)") }
        guard negatives == 0 || loss == .bce else { throw CoreError.invalid("negative sampling needs the bce loss") }
        if loss == .bce && negatives == 0 {
            for r in 0..<data.count where !(0...1).contains(data.ratings[r]) {
                throw CoreError.invalid("with the bce loss, targets must be in [0, 1]; got \(data.ratings[r]) at position \(r)")
            }
        }
        guard data.users.buffer.allSatisfy({ Int($0) < network.nUsers }), data.items.buffer.allSatisfy({ Int($0) < network.nItems }) else {
            throw CoreError.invalid("training pairs refer to rows beyond the network's tables")
        }
        let examples = try MemoryBudget.product([data.count, 1 + negatives], what: "training examples")
        guard examples <= Int(Int32.max) else { throw CoreError.invalid("\(examples) examples per epoch is more than supported") }
        try MemoryBudget.check(bytes: try MemoryBudget.product([examples, 12], what: "training examples"), what: "the epoch's examples")
        let batch = min(options.batchSize, examples)
        let embeddingWidth = network.nodes.reduce(0) { $0 + ($1.kind == .embedding ? $1.units : 0) }
        try MemoryBudget.check(bytes: try MemoryBudget.product([batch, embeddingWidth + 4, 8], what: "batch gradients"),
                               what: "the embedding gradients of a batch")
        self.network = network
        self.data = data
        self.options = options
        self.loss = loss
        self.negatives = negatives
        let chunkCount = max(1, min(8, batch / 64))
        self.batch = batch
        self.chunkCount = chunkCount
        totalSteps = options.epochs * ((examples + batch - 1) / batch)
        let tileCapacity = min(Self.tileRows, (batch + chunkCount - 1) / chunkCount)
        let paddedWeights = PaddedWeights(network: network)
        self.paddedWeights = paddedWeights
        let updateThreads = options.threads == 1 ? 1 : min(8, options.threads <= 0 ? activeProcessorCount() : options.threads)
        // A thread runs its chunks one after another (`thread(ofChunk:)`, computed here before
        // the team exists): their tile passes share one set of tile matrices.
        var scratch: [Int: TileScratch] = [:]
        tiles = try (0..<chunkCount).map { c in
            let owner = c * updateThreads / chunkCount
            if scratch[owner] == nil { scratch[owner] = try TileScratch(network: network, capacity: tileCapacity) }
            return try TilePass(network: network, weights: paddedWeights, capacity: tileCapacity, scratch: scratch[owner])
        }
        outputGradients = (0..<chunkCount).map { _ in Buffer(repeating: 0, count: tileCapacity) }
        userRows = (0..<updateThreads).map { _ in BatchRows(rows: network.nUsers, capacity: batch) }
        itemRows = (0..<updateThreads).map { _ in BatchRows(rows: network.nItems, capacity: batch) }
        let adam = options.optimizer == .adam
        let sideRecords = adam && useRecords ? [SideRecords(network: network, side: 0), SideRecords(network: network, side: 1)] : [nil, nil]
        self.sideRecords = sideRecords
        let sideGradients = sideRecords.map { r in r.map { Buffer<Float>(repeating: 0, count: batch * TileKernels.padded($0.width)) } }
        self.sideGradients = sideGradients
        let exampleGradients = network.nodes.map { n -> Buffer<Float>? in
            guard n.kind == .embedding, sideRecords[n.side] == nil else { return nil }
            return Buffer(repeating: 0, count: batch * TileKernels.padded(n.units))
        }
        self.exampleGradients = exampleGradients
        gradientRows = network.nodes.indices.map { j in
            if let rows = exampleGradients[j] { return (rows.base, TileKernels.padded(network.nodes[j].units)) }
            let n = network.nodes[j]
            guard n.kind == .embedding, let records = sideRecords[n.side], let at = records.offset(ofNode: j) else { return nil }
            return (sideGradients[n.side]!.base + at, TileKernels.padded(records.width))
        }
        embeddingNodes = network.nodes.indices.filter { network.nodes[$0].kind == .embedding }
        denseNodes = network.nodes.indices.filter { network.nodes[$0].kind == .dense }
        exampleThread = Buffer(repeating: 0, count: batch)
        team = WorkerTeam(size: updateThreads)
        denseOwners = Self.denseStepOwners(network: network, threads: updateThreads)
        moments = network.nodes.indices.map { j in
            guard adam, network.nodes[j].kind == .dense, let w = network.weights[j] else { return nil }
            return (Buffer<Float>(repeating: 0, count: w.count), Buffer<Float>(repeating: 0, count: w.count))
        }
        rowMoments = network.nodes.indices.map { j in
            guard adam, network.nodes[j].kind == .embedding, sideRecords[network.nodes[j].side] == nil,
                  let w = network.weights[j] else { return nil }
            return Buffer<Float>(repeating: 0, count: 2 * w.count, hugePages: true)
        }
        biasMoments = network.biases.map { b in
            guard adam, let b else { return nil }
            return (Buffer<Float>(repeating: 0, count: b.count), Buffer<Float>(repeating: 0, count: b.count))
        }
        for tile in tiles {
            for (j, n) in network.nodes.enumerated() where n.kind == .embedding && adam {
                if let rows = rowMoments[j] {
                    tile.prefetchAlong(node: j, rows.base)
                    continue
                }
                // A side's records: each node reads its entries of the joint row; the side's
                // first node fetches the whole record, its rows into L1 and its moments into L2.
                let records = sideRecords[n.side]!, leads = records.nodes[0] == j
                tile.readRows(node: j, from: records.base + records.offset(ofNode: j)!, stride: records.stride,
                              fetch: leads ? records.width : 0)
                if leads { tile.prefetchAlong(node: j, records.base + records.width, stride: records.stride, count: 2 * records.width) }
            }
        }
        rng = Xoshiro256(seed: options.seed ^ 0x4E45_5457)
        epoch = negatives > 0 ? RatingSet(zeros: examples) : data
        if negatives > 0 {
            // CSR of each user's positives, sorted, for membership tests by binary search.
            let indptr = Buffer<Int>(repeating: 0, count: network.nUsers + 1)
            for r in 0..<data.count { indptr[Int(data.users[r]) + 1] += 1 }
            for u in 0..<network.nUsers { indptr[u + 1] += indptr[u] }
            let items = Buffer<Int32>(repeating: 0, count: data.count)
            var fill = Array(indptr.buffer.prefix(network.nUsers))
            for r in 0..<data.count {
                let u = Int(data.users[r])
                items[fill[u]] = data.items[r]
                fill[u] += 1
            }
            for u in 0..<network.nUsers {
                var userItems = UnsafeMutableBufferPointer(start: items.base + indptr[u], count: indptr[u + 1] - indptr[u])
                userItems.sort()
            }
            seenIndptr = indptr
            seenItems = items
        } else {
            seenIndptr = nil
            seenItems = nil
        }
        try initialiseOutputBias()
        paddedWeights.refresh()  // the output bias was just set
    }

    /// Starts the output near the mean target, as a constant model would predict.
    private func initialiseOutputBias() throws {
        guard !network.initialisedFromData, let (node, squash) = network.outputDense else { return }
        var mean = negatives > 0 ? 1.0 / Double(1 + negatives) : data.mean
        var value: Double
        if loss == .bce {
            mean = min(max(mean, 1e-3), 1 - 1e-3)
            value = _log(mean / (1 - mean))
        } else if let (lo, hi) = squash {
            let t = min(max((mean - lo) / (hi - lo), 1e-3), 1 - 1e-3)
            value = _log(t / (1 - t))
        } else {
            value = mean
        }
        try network.useGuard.withWriting {
            network.biases[node]!.base.update(repeating: Float(value), count: network.biases[node]!.count)
            network.initialisedFromData = true
        }
    }

    private func isPositive(user: Int, item: Int32) -> Bool {
        var lo = seenIndptr![user], hi = seenIndptr![user + 1]
        while lo < hi {
            let mid = (lo + hi) / 2
            let v = seenItems![mid]
            if v == item { return true }
            if v < item { lo = mid + 1 } else { hi = mid }
        }
        return false
    }

    /// Fills the epoch's examples (positives plus fresh negatives) and shuffles them.
    private func prepareEpoch() -> Int {
        guard negatives > 0 else {
            epoch.shuffle(using: &rng)
            return data.count
        }
        let us = epoch.users, its = epoch.items, ts = epoch.ratings
        var n = 0
        for r in 0..<data.count {
            let u = Int(data.users[r])
            us[n] = data.users[r]; its[n] = data.items[r]; ts[n] = 1
            n += 1
            for _ in 0..<negatives {
                var item = Int32(rng.nextIndex(below: network.nItems))
                var tries = 0
                while isPositive(user: u, item: item) && tries < 50 {
                    item = Int32(rng.nextIndex(below: network.nItems))
                    tries += 1
                }
                us[n] = Int32(u); its[n] = item; ts[n] = 0
                n += 1
            }
        }
        epoch.shuffle(using: &rng)
        return n
    }

    public func runEpoch() throws -> EpochStats {
        try network.useGuard.withWriting { try runEpochLocked() }
    }

    private func runEpochLocked() throws -> EpochStats {
        let start = monotonicSeconds()
        defer { storeRecords() }  // also after an interruption: the network holds every step taken
        let n = prepareEpoch()
        progress.start(total: n)
        var lossSum = 0.0, absSum = 0.0
        var lo = 0
        while lo < n {
            if cancel.isSet { throw CoreError(.cancelled, "training was interrupted") }
            let hi = min(lo + batch, n)
            let (l, a) = runBatch(lo..<hi)
            lossSum += l; absSum += a
            progress.add(hi - lo, loss: l)
            lo = hi
        }
        epochsDone += 1
        return EpochStats(loss: lossSum / Double(n), mae: absSum / Double(n), seconds: monotonicSeconds() - start)
    }

    /// Forward and backward over one batch in chunks, then one optimiser step.
    private func runBatch(_ range: Range<Int>) -> (Double, Double) {
        let size = range.count
        let scale = 1 / Float(size)
        let chunksUsed = min(chunkCount, size)
        var partial = [Double](repeating: 0, count: 2 * chunksUsed)
        let stepSeed = options.seed &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15
        let lossKind = loss
        let us = epoch.users.base + range.lowerBound, its = epoch.items.base + range.lowerBound
        let ts = epoch.ratings.base + range.lowerBound
        let users = userRows, items = itemRows
        let owners = exampleThread.base
        let buffers = UncheckedSendable((us, its, ts))
        partial.withUnsafeMutableBufferPointer { partialBuffer in
            let out = UncheckedSendable(partialBuffer.baseAddress!)
            let body = { (c: Int) in
                let (us, its, ts) = buffers.value
                let tile = self.tiles[c], gOut = self.outputGradients[c].base
                let lo = size * c / chunksUsed, hi = size * (c + 1) / chunksUsed
                (owners + lo).update(repeating: UInt8(self.thread(ofChunk: c)), count: hi - lo)
                var lossSum = 0.0, absSum = 0.0
                var at = lo
                while at < hi {
                    let n = min(tile.capacity, hi - at)
                    let first = range.lowerBound + at
                    tile.forward(users: us + at, items: its + at, count: n, dropoutSeeds: { stepSeed &+ UInt64(first + $0) })
                    for b in 0..<n {
                        let y = tile.output(b), t = ts[at + b]
                        switch lossKind {
                        case .mse:
                            let e = y - t
                            lossSum += Double(e * e); absSum += Double(abs(e))
                            gOut[b] = 2 * e * scale
                        case .mae:
                            let e = y - t
                            lossSum += Double(abs(e)); absSum += Double(abs(e))
                            gOut[b] = (e > 0 ? 1 : (e < 0 ? -1 : 0)) * scale
                        case .bce:
                            let p = sigmoid(y)
                            let pc = min(max(Double(p), 1e-7), 1 - 1e-7)
                            lossSum += -(Double(t) * _log(pc) + Double(1 - t) * _log(1 - pc))
                            absSum += Double(abs(p - t))
                            gOut[b] = (p - t) * scale
                        }
                    }
                    for j in self.embeddingNodes {
                        let rows = self.gradientRows[j]!
                        tile.redirectGradient(node: j, to: rows.base + at &* rows.stride, stride: rows.stride)
                    }
                    tile.backward(count: n, gOut: gOut, fresh: at == lo)
                    at += n
                }
                out.value[2 * c] = lossSum
                out.value[2 * c + 1] = absSum
            }
            if team.size == 1 || chunksUsed == 1 {
                for rows in users { rows.assign(us, count: size) }
                for rows in items { rows.assign(its, count: size) }
                for c in 0..<chunksUsed { body(c) }
                sumDenseGradients(ranBy: 0, chunksUsed: chunksUsed)
            } else {
                team.run { t in
                    // The batch's distinct users and items (for the optimiser step) get their
                    // slots in each thread's copy (one per participant), beside the chunks;
                    // a worker's item slots wait for the optimiser step (see below).
                    users[t].assign(us, count: size)
                    if t == 0 { items[t].assign(its, count: size) }
                    for c in 0..<chunksUsed where self.thread(ofChunk: c) == t { body(c) }
                    self.sumDenseGradients(ranBy: t, chunksUsed: chunksUsed)
                }
            }
        }
        step += 1
        let update = BatchUpdate(trainer: self, chunksUsed: chunksUsed, examples: size, scale: scale)
        let threads = team.size, workersAssignLate = team.size > 1 && chunksUsed > 1
        team.run { t in
            // The workers give their copies the batch's item slots here rather than beside the
            // chunks: a worker starts each step a little after the calling thread, which also
            // steps the largest dense layer, so the chunks' step waited for the workers and this
            // one for the caller (2 threads, per epoch: the worker's chunks 4 ms longer than the
            // caller's, its optimiser step 6 ms shorter).
            if workersAssignLate && t > 0 { items[t].assign(its, count: size) }
            update.run(thread: t, of: threads)
        }
        var l = 0.0, a = 0.0
        for c in 0..<chunksUsed { l += partial[2 * c]; a += partial[2 * c + 1] }
        return (l, a)
    }

    /// Copies the side records' rows into the network's tables, each thread a share of them.
    private func storeRecords() {
        let sides = sideRecords.compactMap { $0 }
        guard !sides.isEmpty else { return }
        let network = self.network, threads = team.size
        team.run { t in
            for records in sides { records.store(to: network, rows: (records.rows * t / threads)..<(records.rows * (t + 1) / threads)) }
        }
    }

    deinit { team.shutdown() }

    /// Which thread steps each dense layer. A layer split by units between the threads had
    /// them share, in every row of its transposed kernel, the line at the boundary of their
    /// units, and each read the other's share of it in the next forward pass (MF network, 2
    /// threads: its two hidden layers took 8-9 ms of each thread's epoch). So layers go whole
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
    private func thread(ofChunk c: Int) -> Int { c * team.size / chunkCount }

    /// The two halves of a batch's chunks whose dense gradients are summed first, each in chunk
    /// order into its first chunk's buffers; the second sum is then added to the first. Fixed
    /// by `chunksUsed` alone, so the result does not depend on the number of threads.
    ///
    /// Why halves: summed in one run over all chunks, every thread read the gradients of every
    /// chunk for its share of the units, half of them from the other core's cache (2 threads:
    /// 20 ms of a 0.28 s MF-network epoch per thread). A half that one thread ran, it sums as
    /// soon as its chunks are done, from its own cache; the optimiser step then reads one
    /// half-sum across cores.
    private func denseGradientHalves(chunksUsed: Int) -> (Range<Int>, Range<Int>) {
        let mid = min((chunkCount + 1) / 2, chunksUsed)
        return (0..<mid, mid..<chunksUsed)
    }

    /// Whether one thread ran every chunk of `half` (then it sums the half right after).
    private func oneThreadRan(_ half: Range<Int>) -> Bool {
        half.isEmpty || thread(ofChunk: half.lowerBound) == thread(ofChunk: half.upperBound - 1)
    }

    /// Sums the dense gradients of each half of the chunks that thread `t` ran alone.
    private func sumDenseGradients(ranBy t: Int, chunksUsed: Int) {
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
    private func addDenseGradients(node j: Int, units: Range<Int>, from c: Int, to c0: Int) {
        let stride = TileKernels.padded(network.widths[network.nodes[j].inputs[0]])
        let w = tiles[c].kernelGradients[j]!.base, b = tiles[c].biasGradients[j]!.base
        let w0 = tiles[c0].kernelGradients[j]!.base, b0 = tiles[c0].biasGradients[j]!.base
        Kernels.axpy(w0 + units.lowerBound * stride, w + units.lowerBound * stride, units.count * stride, 1)
        Kernels.axpy(b0 + units.lowerBound, b + units.lowerBound, units.count, 1)
    }

    /// The optimiser step, split over the team's threads: each dense node whole to one thread,
    /// or by its units (kernel rows and bias entries) when it dominates (`denseStepOwners`);
    /// each embedding row to the thread that ran its first example's chunk
    /// (`thread(ofExample:)`; by slot number, as before, the tabular network on two threads
    /// took 0.309 s per epoch instead of 0.266 s, rows and gradients crossing between the
    /// cores' caches). Each parameter's gradient is summed over chunks in a fixed order, or
    /// over examples in example order, and then stepped on its own, so the result does not
    /// depend on the number of threads.
    private struct BatchUpdate: @unchecked Sendable {
        let trainer: NetworkTrainer
        let chunksUsed: Int
        let examples: Int
        let lr: Float
        let factors: AdamTrainer.AdamFactors
        /// Per occurrence of an embedding row: the L2 term's factor, 2 λ / batch.
        let rowDecay: Float
        let adam: Bool
        let exampleThread: UnsafeMutablePointer<UInt8>
        /// The trainer's chunks per batch and team size, for `examplesOf(thread:)`.
        let chunkCount: Int
        let teamSize: Int

        init(trainer: NetworkTrainer, chunksUsed: Int, examples: Int, scale: Float) {
            self.trainer = trainer
            chunkCount = trainer.chunkCount
            teamSize = trainer.team.size
            exampleThread = trainer.exampleThread.base
            self.chunksUsed = chunksUsed
            self.examples = examples
            let step = trainer.step
            lr = trainer.options.learningRate(step: step - 1, totalSteps: trainer.totalSteps)
            adam = trainer.options.optimizer == .adam
            factors = AdamTrainer.AdamFactors(lr: lr, step: step)
            rowDecay = 2 * trainer.options.weightDecay * scale
        }

        /// Steps `count` parameters at `p` with moments at `m`, `v` (Adam) by gradient `g` plus
        /// `decay` times the parameters (the L2 term of an embedding row).
        @inline(__always)
        func step(_ p: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>?, _ v: UnsafeMutablePointer<Float>?,
                  _ g: UnsafeMutablePointer<Float>, _ count: Int, decay: Float = 0) {
            if adam {
                AdamTrainer.adamRow(p, m!, v!, g, count, factors, decay: decay)
            } else {
                if decay != 0 { Kernels.axpy(g, p, count, decay) }
                Kernels.axpy(p, g, count, -lr)
            }
        }

        func run(thread t: Int, of threads: Int) {
            let tr = trainer, network = tr.network
            for (j, node) in network.nodes.enumerated() {
                if tr.firstTrainableUser != nil && !(node.kind == .embedding && node.side == 0) { continue }
                switch node.kind {
                case .dense: stepDense(node: j, thread: t, of: threads)
                case .embedding:
                    if let records = tr.sideRecords[node.side] {
                        if records.nodes[0] == j { stepSide(records, thread: t) }  // its other nodes with it
                    } else {
                        stepEmbedding(node: j, thread: t)
                    }
                default: break
                }
            }
        }

        private func stepDense(node j: Int, thread t: Int, of threads: Int) {
            let tr = trainer, network = tr.network, units = network.nodes[j].units
            let fanIn = network.widths[network.nodes[j].inputs[0]], stride = TileKernels.padded(fanIn)
            let W = network.weights[j]!.base, B = network.biases[j]!.base
            let gW = tr.tiles[0].kernelGradients[j]!.base, gB = tr.tiles[0].biasGradients[j]!.base
            let mine: Range<Int>
            if let owner = tr.denseOwners[j] {
                mine = owner == t ? 0..<units : 0..<0
            } else {
                mine = (units * t / threads)..<(units * (t + 1) / threads)
            }
            guard !mine.isEmpty else { return }
            // Each half of the chunks summed (unless the one thread that ran it already did),
            // then the second half's sum added to the first's, which is chunk 0's buffer.
            let (low, high) = tr.denseGradientHalves(chunksUsed: chunksUsed)
            for half in [low, high] where half.count > 1 && !tr.oneThreadRan(half) {
                for c in half.dropFirst() { tr.addDenseGradients(node: j, units: mine, from: c, to: half.lowerBound) }
            }
            if !high.isEmpty { tr.addDenseGradients(node: j, units: mine, from: high.lowerBound, to: 0) }
            let decay = tr.options.weightDecay
            let mW = tr.moments[j]?.m.base, vW = tr.moments[j]?.v.base
            let mB = tr.biasMoments[j]?.m.base, vB = tr.biasMoments[j]?.v.base
            for u in mine {
                let row = W + u * fanIn
                if decay > 0 {  // decoupled decay of the kernel (AdamW), not the bias
                    let keep = 1 - lr * decay
                    for k in 0..<fanIn { row[k] *= keep }
                }
                step(row, mW.map { $0 + u * fanIn }, vW.map { $0 + u * fanIn }, gW + u * stride, fanIn)
            }
            step(B + mine.lowerBound, mB.map { $0 + mine.lowerBound }, vB.map { $0 + mine.lowerBound },
                 gB + mine.lowerBound, mine.count)
            tr.paddedWeights.refresh(node: j, units: mine)
        }

        private func stepEmbedding(node j: Int, thread t: Int) {
            // Raw pointers only from here on: this runs on every thread at once, and reference
            // counting the shared buffers per row made the threads fight over their counts.
            let tr = trainer, w = tr.network.widths[j], side = tr.network.nodes[j].side
            let moments = tr.rowMoments[j]?.base
            let rows = RowPlaces(params: tr.network.weights[j]!.base, paramStride: w, moments: moments, momentStride: 2 * w,
                                 secondMoments: w, together: false)
            stepRows(side == 0 ? tr.userRows[t] : tr.itemRows[t], rows, width: w, gradients: tr.exampleGradients[j]!.base,
                     gradientStride: TileKernels.padded(w), nonNegative: tr.network.nodes[j].nonNegative,
                     firstTrainable: side == 0 ? tr.firstTrainableUser ?? 0 : 0, thread: t)
        }

        /// Steps a side's records: every node of the side at once, one Adam step per joint row.
        private func stepSide(_ records: SideRecords, thread t: Int) {
            let tr = trainer, side = records.side, width = records.width
            let rows = RowPlaces(params: records.base, paramStride: records.stride, moments: records.base + width,
                                 momentStride: records.stride, secondMoments: width, together: true)
            stepRows(side == 0 ? tr.userRows[t] : tr.itemRows[t], rows, width: width, gradients: tr.sideGradients[side]!.base,
                     gradientStride: TileKernels.padded(width), nonNegative: records.nonNegative,
                     firstTrainable: side == 0 ? tr.firstTrainableUser ?? 0 : 0, thread: t)
        }

        /// Where a table's row r lives while it trains: its `width` entries at `params + r ·
        /// paramStride`, and with Adam their first moments at `moments + r · momentStride` and
        /// their second moments `secondMoments` floats after those. `together`: entries and
        /// moments are one record (`SideRecords`), fetched as one run of `paramStride` floats.
        private struct RowPlaces {
            let params: UnsafeMutablePointer<Float>
            let paramStride: Int
            let moments: UnsafeMutablePointer<Float>?
            let momentStride, secondMoments: Int
            let together: Bool
        }

        /// One optimiser step for the rows of `rows` that thread `t` owns, whose examples'
        /// gradients are rows of `gradients` (`gradientStride` apart).
        @inline(__always)
        private func stepRows(_ rows: BatchRows, _ places: RowPlaces, width w: Int, gradients perExample: UnsafeMutablePointer<Float>,
                              gradientStride stride: Int, nonNegative: Bool, firstTrainable first: Int, thread t: Int) {
            let count = rows.count, slots = rows.slotOfExample.base, touched = rows.touched.base, firsts = rows.firstExample.base
            let occurrences = rows.occurrences.base
            let table = places.params, rowStride = places.paramStride, moments = places.moments
            let momentStride = places.momentStride, second = places.secondMoments
            // Each row's total gathers, in example order, in the gradient of its first example.
            // Rows touched once (most users) need nothing here. The L2 term is added in the
            // step, once per row, times the row's count of examples.
            let repeats = rows.repeats.base
            for r in 0..<rows.repeatCount {
                let b = Int(repeats[r]), first = Int(firsts[Int(slots[b])])
                guard thread(ofExample: first) == t else { continue }
                Kernels.axpy(perExample + first &* stride, perExample + b &* stride, w, 1)
            }
            // The rows this thread owns: slots are numbered in order of their first example, and
            // a thread's examples are one run of chunks, so its rows are one run of slots. Reading
            // only those (not every slot's first example, to test its owner), a thread leaves the
            // other's part of the batch's slot arrays in that core's cache, where the next
            // batch's slots are written (users' and items' slots took 7.8 ms of each thread's
            // MF-network epoch, 2 ms with nothing else running).
            let examples = examplesOf(thread: t)
            let mine = firstSlot(from: examples.lowerBound, firsts, count)..<firstSlot(from: examples.upperBound, firsts, count)
            for s in mine {
                if s + 8 < mine.upperBound {  // rows at random: fetch a few ahead
                    let ahead = Int(touched[s + 8])
                    if places.together {
                        Kernels.prefetch(table + ahead &* rowStride, rowStride)
                    } else {
                        Kernels.prefetch(table + ahead &* rowStride, w)
                        if let moments { Kernels.prefetch(moments + ahead &* momentStride, second &+ w) }
                    }
                }
                let row = Int(touched[s])
                if row >= first {
                    let p = table + row &* rowStride, g = perExample + Int(firsts[s]) &* stride
                    let decay = rowDecay * Float(occurrences[s])
                    // Adam's row step called here rather than through `step`, which the compiler
                    // kept as a call per row (MF network, 2 threads, best of 20 epochs, twice:
                    // 0.274 -> 0.267 s and 0.278 -> 0.274 s). Moments exist only with Adam.
                    if let moments {
                        let m = moments + row &* momentStride
                        AdamTrainer.adamRow(p, m, m + second, g, w, factors, decay: decay)
                    } else {
                        step(p, nil, nil, g, w, decay: decay)
                    }
                    if nonNegative { Kernels.clampNonNegative(p, w) }
                }
            }
        }

        /// The examples of the batch whose chunks thread `t` ran: chunks c with
        /// c · threads / chunkCount = t (`thread(ofChunk:)`), i.e. from ⌈t · chunkCount / threads⌉
        /// up to the next thread's first, among the chunks used.
        @inline(__always)
        private func examplesOf(thread t: Int) -> Range<Int> {
            @inline(__always) func start(_ t: Int) -> Int {
                let chunk = min(chunksUsed, (t * chunkCount + teamSize - 1) / teamSize)
                return examples * chunk / chunksUsed
            }
            return start(t)..<start(t + 1)
        }

        /// The first slot whose first example is at or after `example` (`count` if none): slots'
        /// first examples increase with the slot.
        @inline(__always)
        private func firstSlot(from example: Int, _ firsts: UnsafePointer<Int32>, _ count: Int) -> Int {
            var lo = 0, hi = count
            while lo < hi {
                let mid = (lo + hi) / 2
                if Int(firsts[mid]) < example { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }

        /// The thread that ran example `b`'s chunk in the forward and backward passes. A row is
        /// stepped by the thread of its first example: that thread fetched the row and wrote
        /// its gradient, so both are in its core's cache.
        @inline(__always)
        private func thread(ofExample b: Int) -> Int { Int(exampleThread[b]) }
    }
}
