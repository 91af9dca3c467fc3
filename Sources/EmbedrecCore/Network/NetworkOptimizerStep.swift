/// The optimiser step of a network's batch: Adam or SGD on every dense layer and on each
/// embedding row the batch touched (with its L2 term), split over the team's threads.
extension NetworkTrainer {
    /// The optimiser step, split over the team's threads: each dense node whole to one thread,
    /// or by its units (kernel rows and bias entries) when it dominates (`denseStepOwners`);
    /// each embedding row to the thread that ran its first example's chunk
    /// (`thread(ofExample:)`: by slot number instead, rows and gradients crossed between the
    /// cores' caches). Each parameter's gradient is summed over chunks in a fixed order, or
    /// over examples in example order, and then stepped on its own, so the result does not
    /// depend on the number of threads.
    struct BatchUpdate: @unchecked Sendable {
        let trainer: NetworkTrainer
        let chunksUsed: Int
        let examples: Int
        let lr: Float
        let factors: Adam.Factors
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
            factors = Adam.Factors(lr: lr, step: step)
            rowDecay = 2 * trainer.options.weightDecay * scale
        }

        /// Steps `count` parameters at `p` with moments at `m`, `v` (Adam) by gradient `g` plus
        /// `decay` times the parameters (the L2 term of an embedding row).
        @inline(__always)
        func step(_ p: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>?, _ v: UnsafeMutablePointer<Float>?,
                  _ g: UnsafeMutablePointer<Float>, _ count: Int, decay: Float = 0) {
            if adam {
                Adam.stepRow(p, m!, v!, g, count, factors, decay: decay)
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
                case .embedding where node.frozen: break
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
            // batch's slots are written.
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
                    // kept as a call per row. Moments exist only with Adam.
                    if let moments {
                        let m = moments + row &* momentStride
                        Adam.stepRow(p, m, m + second, g, w, factors, decay: decay)
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
