#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Debian's CRIU against the patched kernel, inside the trixie chroot that
harness/criu/run sets up. Prints TAP.

  suite.py            the four tests of the suite (1..4)
  suite.py --bench    dump time of a 1 GiB process, PAGEMAP_SCAN against
                      the pagemap read() fallback (CRIU_FAULT=135): lines
                      "criu-bench: ..." and one TAP result (1..1)

The dumped program is memlayout (harness/criu/memlayout.c); its layout
file says which pages it wrote. PAGEMAP_SCAN ioctls are counted with a
kprobe on do_pagemap_cmd(), the pagemap file's ioctl handler, so "dump A
used the ioctl and dump B did not" is the kernel's word, not CRIU's.
"""
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time

import pycriu

BIN = '/opt'                    # harness/criu/run binds the guest's files here
WORK = '/tmp/criu'              # tmpfs
OUT = WORK + '/out'             # memlayout's layout and reports
FILE = '/mnt/pms-criu.dat'      # on the guest's ext2 scratch filesystem
TRACE = '/sys/kernel/tracing'
KDAT = '/run/criu.kdat'
COMMON = ['--manage-cgroups=ignore', '-v4']
PE_PARENT, PE_PRESENT = 1, 4
PAGE = 4096

tap_n = 0


def diag(msg):
    for line in str(msg).splitlines():
        print('# ' + line, flush=True)


def tap(ok, name, why=()):
    global tap_n
    tap_n += 1
    for w in why:
        diag('  ' + w)
    print('%s %d - %s' % ('ok' if ok else 'not ok', tap_n, name), flush=True)


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def criu(args, log, env=None):
    """Runs criu with a fresh kerndat (so each log shows the probe)."""
    if os.path.exists(KDAT):
        os.unlink(KDAT)
    e = dict(os.environ)
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.run(['criu'] + args + COMMON + ['-o', log], env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    dt = time.monotonic() - t0
    out = p.stdout
    if os.path.exists(log):
        out += open(log, errors='replace').read()
    if p.returncode != 0:
        diag('criu %s: exit %d' % (' '.join(args), p.returncode))
        diag(p.stdout[-2000:])
        if os.path.exists(log):
            diag(''.join(open(log).readlines()[-25:]))
    return p.returncode, out, dt


# --- Counting PAGEMAP_SCAN ioctls -------------------------------------------

def kprobe_setup():
    with open(TRACE + '/kprobe_events', 'w') as f:
        f.write('p:pms/pagemap_ioctl do_pagemap_cmd\n')
    with open(TRACE + '/events/pms/pagemap_ioctl/enable', 'w') as f:
        f.write('1')
    with open(TRACE + '/tracing_on', 'w') as f:
        f.write('1')


def ioctls(fn):
    """Runs fn(); returns (its result, PAGEMAP_SCAN ioctls criu made)."""
    open(TRACE + '/trace', 'w').close()
    r = fn()
    n = 0
    for line in open(TRACE + '/trace'):
        if 'pagemap_ioctl:' in line and line.split()[0].startswith('criu-'):
            n += 1
    return r, n


# --- The program and its reports --------------------------------------------

def ranges(words):
    s = set()
    for w in words:
        a, _, b = w.partition('-')
        s.update(range(int(a), int(b or a) + 1))
    return s


class Layout:
    def __init__(self, path):
        self.regions = {}       # name -> (start, pages)
        self.written = {}
        self.phase2 = {}
        for line in open(path):
            w = line.split()
            if w[0] == 'pid':
                self.pid = int(w[1])
            elif w[0] == 'swapped':
                self.swapped = int(w[1])
                self.swap_kib = self.swapped * PAGE // 1024
            elif w[0] == 'region':
                self.regions[w[1]] = (int(w[2], 16), int(w[3]))
            elif w[0] == 'written':
                self.written[w[1]] = ranges(w[2:])
            elif w[0] == 'phase2':
                self.phase2[w[1]] = ranges(w[2:])


def wait_file(path, what, timeout=120):
    t = time.monotonic() + timeout
    while not os.path.exists(path):
        check(time.monotonic() < t, 'no %s after %d s' % (what, timeout))
        time.sleep(0.05)


class Iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]


def swapped_kib(pid, start):
    """The Swap: of the VMA at start, from /proc/PID/smaps."""
    vma = False
    for line in open('/proc/%d/smaps' % pid):
        w = line.split()
        if '-' in w[0] and len(w) >= 5:
            vma = int(w[0].split('-')[0], 16) == start
        elif vma and w[0] == 'Swap:':
            return int(w[1])
    return 0


def page_out(lay, name='anon'):
    """Pushes the region's pages out to swap from here, with
    process_madvise(MADV_PAGEOUT): the program runs no code for it, so its
    memory stays the same for the next dump. Retries from each CPU (pages
    still in a CPU's LRU batch are skipped). Returns the KiB in swap."""
    libc = ctypes.CDLL(None, use_errno=True)
    start, pages = lay.regions[name]
    iov = Iovec(start, pages * PAGE)
    fd = os.pidfd_open(lay.pid)
    cpus = sorted(os.sched_getaffinity(0))
    try:
        for rnd in range(20):
            os.sched_setaffinity(0, {cpus[rnd % len(cpus)]})
            # process_madvise(2) is syscall 440 on x86_64; MADV_PAGEOUT 21
            if libc.syscall(440, fd, ctypes.byref(iov), 1, 21, 0) < 0:
                raise Fail('process_madvise: %s' %
                           os.strerror(ctypes.get_errno()))
            kib = swapped_kib(lay.pid, start)
            if kib >= lay.swap_kib:
                break
            time.sleep(0.02)
    finally:
        os.sched_setaffinity(0, set(cpus))
        os.close(fd)
    return kib


def ask(pid, sig, ack):
    path = OUT + '/' + ack
    if os.path.exists(path):
        os.unlink(path)
    os.kill(pid, sig)
    wait_file(path, ack)
    return open(path).read()


def report(pid, name):
    """The program's checksum and per-region PAGEMAP_SCAN categories."""
    with open(OUT + '/req', 'w') as f:
        f.write(name)
    r = {'data': {}, 'swapped': {}, 'huge': {}, 'zero': {}}
    for line in ask(pid, signal.SIGUSR1, name).splitlines():
        w = line.split()
        if w[0] == 'checksum':
            r['checksum'] = w[1]
        elif w[0] == 'data':
            r['data'][w[1]] = ranges(w[2:])
        else:
            r[w[0]][w[1]] = int(w[2])
    return r


def start_memlayout(args, ready):
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.unlink(os.path.join(OUT, f))
    env = dict(os.environ, GLIBC_TUNABLES='glibc.pthread.rseq=0')
    p = subprocess.Popen([BIN + '/memlayout'] + args, env=env, cwd='/',
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(WORK + '/memlayout.err', 'a'),
                         start_new_session=True)
    wait_file(OUT + '/' + ready, 'memlayout ' + ready)
    return p


# --- Images -----------------------------------------------------------------

def load(path):
    with open(path, 'rb') as f:
        return pycriu.images.load(f)


def pagemap(d, name):
    """{page address or offset: flags} of a pagemap image."""
    pages = {}
    for e in load(os.path.join(d, name))['entries'][1:]:
        for i in range(e['nr_pages']):
            pages[e['vaddr'] + i * PAGE] = e.get('flags', 0)
    return pages


def shmem_pagemaps(d):
    return sorted(f for f in os.listdir(d) if f.startswith('pagemap-shmem-'))


def per_region(lay, pages, want_flags=None):
    """The page indexes of each region that a pagemap holds."""
    got = {n: set() for n in lay.regions}
    for addr, flags in pages.items():
        if want_flags is not None and not want_flags(flags):
            continue
        for n, (start, npages) in lay.regions.items():
            if start <= addr < start + npages * PAGE:
                got[n].add((addr - start) // PAGE)
    return got


def shmem_region(d):
    """Page indexes of the one shared anonymous region's dump."""
    maps = shmem_pagemaps(d)
    if not maps and os.path.basename(d).startswith('P'):
        return set()            # pre-dumps leave anonymous shared memory out
    check(len(maps) == 1, '%s: shmem pagemaps %s, expected one' % (d, maps))
    return {a // PAGE for a, fl in pagemap(d, maps[0]).items()
            if not fl & PE_PARENT}


def fmt(s):
    s = sorted(s)
    out, i = [], 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        out.append(str(s[i]) if i == j else '%d-%d' % (s[i], s[j]))
        i = j + 1
    return ' '.join(out) or '-'


def compare_regions(what, got, want):
    bad = []
    for n in want:
        if got.get(n, set()) != want[n]:
            bad.append('%s %s: got [%s], expected [%s]' %
                       (what, n, fmt(got.get(n, set())), fmt(want[n])))
    return bad


# --- The tests --------------------------------------------------------------

def test_check():
    why = []
    rc, out, _ = criu(['check'], WORK + '/check.log')
    diag('criu check: ' + ' | '.join(l for l in out.splitlines()
                                     if 'Error' in l or 'Looks' in l)[-600:])
    if rc != 0 or 'Looks good' not in out:
        why.append('criu check failed (exit %d)' % rc)
    rc, out, _ = criu(['check', '--feature', 'pagemap_scan'],
                      WORK + '/check-feature.log')
    diag('criu check --feature pagemap_scan: ' +
         ' | '.join(l for l in out.splitlines() if 'pagemap_scan' in l))
    if rc != 0 or 'is supported' not in out:
        why.append('criu check --feature pagemap_scan failed (exit %d)' % rc)
    # Informational: the optional features criu would like.
    _, out, _ = criu(['check', '--all'], WORK + '/check-all.log')
    diag('criu check --all (informational): ' +
         ' | '.join(l for l in out.splitlines()
                    if 'Error' in l or 'Warn' in l or 'Looks' in l)[-800:])
    tap(not why, 'criu check and criu check --feature pagemap_scan', why)


def dump(pid, d, log, extra=(), env=None):
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    (rc, out, dt), n = ioctls(lambda: criu(
        ['dump', '-t', str(pid), '-D', d, '--leave-running'] + list(extra),
        log, env))
    check(rc == 0, 'criu dump -D %s failed (exit %d)' % (d, rc))
    return dt, n


def images_equal(a, b):
    names = sorted(f for f in os.listdir(a)
                   if f.startswith('pagemap') or f.startswith('pages-'))
    other = sorted(f for f in os.listdir(b)
                   if f.startswith('pagemap') or f.startswith('pages-'))
    check(names == other, 'image files differ: %s vs %s' % (names, other))
    diff = [f for f in names
            if open(os.path.join(a, f), 'rb').read() !=
            open(os.path.join(b, f), 'rb').read()]
    return names, diff


def contents(d, name):
    """{page address: its 4 KiB} of a pagemap image and its pages image."""
    img = load(os.path.join(d, name))['entries']
    out = {}
    with open(os.path.join(d, 'pages-%d.img' % img[0]['pages_id']), 'rb') as f:
        for e in img[1:]:
            if e.get('flags', 0) & PE_PARENT:
                continue
            for i in range(e['nr_pages']):
                out[e['vaddr'] + i * PAGE] = f.read(PAGE)
    return out


def vma_of(pid, addr):
    for line in open('/proc/%d/maps' % pid):
        w = line.split()
        lo, hi = (int(x, 16) for x in w[0].split('-'))
        if lo <= addr < hi:
            return ' '.join([w[0], w[1]] + w[5:])
    return '?'


def soft_dirty(pid, lay, name, pages):
    """Which of a region's pages the kernel says are soft-dirty (bit 55 of
    /proc/PID/pagemap, read() only)."""
    start = lay.regions[name][0]
    out = set()
    with open('/proc/%d/pagemap' % pid, 'rb') as f:
        for i in pages:
            f.seek((start // PAGE + i) * 8)
            if int.from_bytes(f.read(8), 'little') >> 55 & 1:
                out.add(i)
    return out


def where(lay, addr):
    for n, (start, npages) in lay.regions.items():
        if start <= addr < start + npages * PAGE:
            return '%s+%d' % (n, (addr - start) // PAGE)
    return 'other'


def entries_diff(lay, a, b, name):
    """The pagemap entries of one image that only a or only b has."""
    ea = [(e['vaddr'], e['nr_pages'], e.get('flags', 0))
          for e in load(os.path.join(a, name))['entries'][1:]]
    eb = [(e['vaddr'], e['nr_pages'], e.get('flags', 0))
          for e in load(os.path.join(b, name))['entries'][1:]]
    out = []
    for tag, x, y in (('only A', ea, eb), ('only B', eb, ea)):
        for v, n, f in sorted(set(x) - set(y)):
            out.append('%s: %#x (%s) %d pages flags %d' %
                       (tag, v, where(lay, v), n, f))
    return out


def test_dumps(st):
    lay, pid = st['layout'], st['layout'].pid
    why = []
    check(lay.swapped > 0, 'MADV_PAGEOUT swapped no page (is there swap?)')
    swapped_a = page_out(lay)
    check(swapped_a > 0, 'no page in swap before dump A')
    # The kerndat probe's own ioctls, to tell them from the dump's.
    (rc, _, _), probe = ioctls(lambda: criu(
        ['check', '--feature', 'pagemap_scan'], WORK + '/probe.log'))
    check(rc == 0, 'criu check --feature pagemap_scan failed')
    ta, na = dump(pid, WORK + '/A', WORK + '/dumpA.log')
    swapped_b = page_out(lay)
    check(swapped_b > 0, 'no page back in swap before dump B')
    tb, nb = dump(pid, WORK + '/B', WORK + '/dumpB.log',
                  env={'CRIU_FAULT': '135'})
    diag('dump A (PAGEMAP_SCAN, %d KiB in swap before it): %.2f s, %d ioctls; '
         'dump B (CRIU_FAULT=135, %d KiB in swap): %.2f s, %d ioctls; kerndat '
         'probe alone: %d' % (swapped_a, ta, na, swapped_b, tb, nb, probe))
    if not na > probe:
        why.append('dump A made %d PAGEMAP_SCAN ioctls, the probe alone %d: '
                   'A did not scan with it' % (na, probe))
    if nb != probe:
        why.append('dump B made %d PAGEMAP_SCAN ioctls, not only the probe\'s '
                   '%d' % (nb, probe))
    loga = open(WORK + '/dumpA.log').read()
    logb = open(WORK + '/dumpB.log').read()
    for name, log in (('A', loga), ('B', logb)):
        if 'PAGEMAP_SCAN is supported' not in log:
            why.append('dump %s log: no "PAGEMAP_SCAN is supported" from '
                       'the kerndat probe' % name)
    names, diff = images_equal(WORK + '/A', WORK + '/B')
    diag('images compared: ' + ' '.join(names))
    img = 'pagemap-%d.img' % pid
    if diff:
        diag('images that differ between A and B: ' + ' '.join(diff))
        for line in entries_diff(lay, WORK + '/A', WORK + '/B', img)[:20]:
            diag('  ' + line)
    # The one difference allowed, and checked page by page: B (CRIU's
    # read() path) dumps the huge zero pmd, whose PFNs are not the zero
    # page's, where PAGEMAP_SCAN reports PAGE_IS_PFNZERO and A skips it.
    # The same CRIU does the same on an upstream kernel (6.18).
    if [f for f in diff if f != img and not f.startswith('pages-')]:
        why.append('images other than the task\'s pagemap and pages differ')
    ca, cb = contents(WORK + '/A', img), contents(WORK + '/B', img)
    start, npages = lay.regions['thpzero']
    hzp = {start + i * PAGE for i in range(npages)}
    extra = set(cb) - set(ca)
    if set(ca) - set(cb):
        why.append('pages only A holds: %d' % len(set(ca) - set(cb)))
    if extra and extra != hzp:
        why.append('pages only B holds: %d, not the huge zero pmd' % len(extra))
    if any(cb[a] != bytes(PAGE) for a in extra & hzp):
        why.append('B holds non-zero pages in the huge zero pmd')
    same = [a for a in set(ca) & set(cb) if ca[a] != cb[a]]
    if same:
        why.append('%d pages differ between A and B' % len(same))
        for a in sorted(same)[:4]:
            off = next(i for i in range(PAGE) if ca[a][i] != cb[a][i])
            why.append('  %#x (%s, VMA %s) first at +%#x: A %s B %s' %
                       (a, where(lay, a), vma_of(pid, a), off,
                        ca[a][off:off + 16].hex(), cb[a][off:off + 16].hex()))
    diag('A and B hold the same %d pages, byte for byte%s' %
         (len(set(ca) & set(cb)) - len(same),
          '; B also the %d zero pages of the huge zero pmd' % len(extra)
          if extra else ''))
    pages = pagemap(WORK + '/A', 'pagemap-%d.img' % pid)
    got = per_region(lay, pages, lambda f: f & PE_PRESENT and not f & PE_PARENT)
    got['shared'] = shmem_region(WORK + '/A')
    diag('dump A: %d pages in pagemap-%d.img (%d in our regions), '
         '%d in the shmem pagemap' % (len(pages), pid,
                                       sum(len(v) for n, v in got.items()
                                           if n != 'shared'),
                                       len(got['shared'])))
    why += compare_regions('dump A', got, lay.written)
    st['at_dump'] = report(pid, 'at-dump')
    if st['at_dump']['checksum'] != st['at_start']['checksum']:
        why.append('checksum changed across the dumps: %s, at start %s' %
                   (st['at_dump']['checksum'], st['at_start']['checksum']))
    tap(not why, TITLES['test_dumps'], why)


def incremental(st, tag, env):
    """pre-dump, the phase-2 writes, dump --track-mem on top: returns the
    pages of each region the second dump holds itself, and the pages the
    pre-dump held (the parent)."""
    lay, pid = st['layout'], st['layout'].pid
    p, d = WORK + '/P' + tag, WORK + '/D' + tag
    for x in (p, d):
        if os.path.exists(x):
            shutil.rmtree(x)
        os.makedirs(x)
    (rc, _, tp), npre = ioctls(lambda: criu(
        ['pre-dump', '-t', str(pid), '-D', p, '--track-mem'],
        WORK + '/predump%s.log' % tag, env))
    check(rc == 0, 'criu pre-dump %s failed (exit %d)' % (tag, rc))
    sd = {n: soft_dirty(pid, lay, n, lay.written[n]) for n in lay.regions}
    diag('%s: soft-dirty after the pre-dump (kernel, pagemap read()): %s' %
         (tag, ', '.join('%s [%s]' % (n, fmt(v)) for n, v in sd.items() if v)
          or 'none of the written pages'))
    ask(pid, signal.SIGUSR2, 'phase2-done')
    st['phase2'] = st.get('phase2', 0) + 1
    (rc, _, td), nd = ioctls(lambda: criu(
        ['dump', '-t', str(pid), '-D', d, '--track-mem', '--prev-images-dir',
         '../P' + tag, '--leave-running'], WORK + '/dump2%s.log' % tag, env))
    check(rc == 0, 'criu dump --track-mem %s failed (exit %d)' % (tag, rc))
    mine = per_region(lay, pagemap(d, 'pagemap-%d.img' % pid),
                      lambda f: f & PE_PRESENT and not f & PE_PARENT)
    mine['shared'] = shmem_region(d)
    held = per_region(lay, pagemap(p, 'pagemap-%d.img' % pid),
                      lambda f: f & PE_PRESENT and not f & PE_PARENT)
    held['shared'] = shmem_region(p)
    diag('%s: pre-dump %.2f s (%d ioctls), dump %.2f s (%d ioctls)' %
         (tag, tp, npre, td, nd))
    for n in lay.regions:
        if mine[n] or held[n] or lay.phase2[n]:
            diag('  %s %-8s pre-dump held [%s]; second dump holds [%s]' %
                 (tag, n, fmt(held[n]), fmt(mine[n])))
    return mine, held


def test_incremental(st):
    """Soft-dirty through PAGEMAP_SCAN (A) and through pagemap read() (B):
    a second dump holds the pages written since the pre-dump, and the
    pages the pre-dump did not hold (it leaves anonymous shared memory
    out), and all pages of VMAs without PROT_WRITE (CRIU dumps those
    whole in every dump), nothing else; A and B alike."""
    lay = st['layout']
    why = []
    got = {}
    for tag, env in (('A', {}), ('B', {'CRIU_FAULT': '135'})):
        mine, held = incremental(st, tag, env)
        got[tag] = mine
        # Only a pre-dump that held the data makes "exactly" mean anything.
        for n in ('anon', 'thp', 'file', 'protnone'):
            if not lay.written[n] <= held[n]:
                why.append('pre-dump %s of %s lacks [%s]' %
                           (tag, n, fmt(lay.written[n] - held[n])))
        want = {}
        for n in lay.regions:
            want[n] = lay.phase2[n] | (lay.written[n] - held[n])
        want['protnone'] = set(lay.written['protnone'])
        why += compare_regions('second dump ' + tag, mine, want)
    why += compare_regions('second dumps A vs B', got['A'], got['B'])
    st['after_phase2'] = report(lay.pid, 'after-phase2')
    tap(not why, TITLES['test_incremental'], why)


def test_restore(st):
    lay, pid = st['layout'], st['layout'].pid
    r1 = st['at_dump']
    if 'after_phase2' not in st:
        # The incremental stage failed: the original does its writes now.
        if 'phase2' not in st:
            ask(pid, signal.SIGUSR2, 'phase2-done')
            st['phase2'] = 1
        st['after_phase2'] = report(pid, 'after-phase2')
    r2 = st['after_phase2']
    why = []
    st['proc'].kill()
    st['proc'].wait()
    rc, _, tr = criu(['restore', '-D', WORK + '/A', '-d'], WORK + '/restore.log')
    check(rc == 0, 'criu restore failed (exit %d)' % rc)
    diag('restore %.2f s' % tr)
    check(os.path.exists('/proc/%d' % pid), 'no process %d after restore' % pid)
    r3 = report(pid, 'restored')
    if r3['checksum'] != r1['checksum']:
        why.append('checksum after restore %s, at dump A %s' %
                   (r3['checksum'], r1['checksum']))
    why += compare_regions('restored data pages', r3['data'], r1['data'])
    diag('restored: checksum %s (at dump A %s); huge pages thp %d (%d at dump)' %
         (r3['checksum'], r1['checksum'], r3['huge']['thp'], r1['huge']['thp']))
    # It keeps running: the same writes give the same memory as the original's.
    for _ in range(st['phase2']):
        ask(pid, signal.SIGUSR2, 'phase2-done')
    r4 = report(pid, 'restored-phase2')
    if r4['checksum'] != r2['checksum']:
        why.append('checksum after the phase-2 writes %s, the original\'s %s' %
                   (r4['checksum'], r2['checksum']))
    why += compare_regions('restored phase-2 data pages', r4['data'], r2['data'])
    os.kill(pid, signal.SIGTERM)
    t = time.monotonic() + 30
    while os.path.exists('/proc/%d' % pid) and time.monotonic() < t:
        state = open('/proc/%d/stat' % pid).read().split(') ')[-1][0] \
            if os.path.exists('/proc/%d/stat' % pid) else 'X'
        if state in 'ZX':
            break
        time.sleep(0.05)
    else:
        if os.path.exists('/proc/%d' % pid):
            why.append('restored process ignored SIGTERM')
    tap(not why, TITLES['test_restore'], why)


TITLES = {
    'test_dumps': 'dump A (PAGEMAP_SCAN) and dump B (CRIU_FAULT=135, pagemap '
                  'read()): identical pagemap and pages images holding '
                  'exactly the written pages',
    'test_incremental': 'pre-dump, known writes, dump --track-mem '
                        '--prev-images-dir (A and B): the second dump holds '
                        'exactly the pages written in between',
    'test_restore': 'restore: same checksum, same PAGEMAP_SCAN categories, '
                    'keeps running',
}


def start(st):
    kprobe_setup()
    st['proc'] = start_memlayout([OUT, FILE], 'layout')
    lay = st['layout'] = Layout(OUT + '/layout')
    r = st['at_start'] = report(lay.pid, 'at-start')
    diag('memlayout: huge pages thp %d thpzero %d, zero pages anon %d '
         'thpzero %d, swapped anon %d at start' %
         (r['huge']['thp'], r['huge']['thpzero'], r['zero']['anon'],
          r['zero']['thpzero'], lay.swapped))
    check(r['huge']['thp'] == 512, 'the THP region is not THP-backed')
    bad = compare_regions('PAGEMAP_SCAN at start', r['data'], lay.written)
    check(not bad, '; '.join(bad))


def suite():
    print('1..4', flush=True)
    test_check()
    st = {}
    try:
        start(st)
    except (Fail, OSError, KeyError, ValueError, IndexError) as e:
        st['broken'] = 'memlayout: %s' % e
    for t in (test_dumps, test_incremental, test_restore):
        before = tap_n
        try:
            check('broken' not in st, st.get('broken'))
            t(st)
        except (Fail, OSError, KeyError, ValueError, IndexError) as e:
            if tap_n == before:
                tap(False, TITLES[t.__name__], [str(e)])
            if 'at_dump' not in st:
                st.setdefault('broken', '%s failed' % t.__name__)


# --- The measurement --------------------------------------------------------

def bench():
    print('1..1', flush=True)
    size, reps, rows, why = 1024, 3, [], []
    for pct in (1, 50):
        p = start_memlayout(['--bench', str(size), str(pct), OUT], 'ready')
        info = dict(l.split() for l in open(OUT + '/ready'))
        pid, written = int(info['pid']), int(info['written'])
        # Warm kerndat: timings without the probe.
        criu(['check'], WORK + '/bench-check.log')
        for mode, env in (('A', {}), ('B', {'CRIU_FAULT': '135'})):
            runs = []
            for rep in range(reps):
                d = WORK + '/bench'
                if os.path.exists(d):
                    shutil.rmtree(d)
                os.makedirs(d)
                e = dict(os.environ, **env)
                t0 = time.monotonic()
                rc = subprocess.run(
                    ['criu', 'dump', '-t', str(pid), '-D', d, '--leave-running',
                     '--manage-cgroups=ignore', '-o', WORK + '/bench.log'],
                    env=e).returncode
                wall = time.monotonic() - t0
                if rc:
                    why.append('%d%% %s: criu dump exit %d' % (pct, mode, rc))
                    break
                s = load(d + '/stats-dump')['entries'][0]['dump']
                runs.append((wall, s['frozen_time'] / 1e6,
                             s['memdump_time'] / 1e6, s['pages_scanned'],
                             s['pages_written']))
                if s['pages_written'] < written:
                    why.append('%d%% %s: %d pages written, the program wrote '
                               '%d' % (pct, mode, s['pages_written'], written))
            if runs:
                runs.sort()
                rows.append((pct, mode) + runs[len(runs) // 2])
        p.kill()
        p.wait()
    print('criu-bench: %-6s %-4s %9s %9s %10s %9s %9s' %
          ('pct', 'path', 'wall s', 'frozen s', 'memdump s', 'scanned',
           'written'))
    for pct, mode, wall, frozen, memdump, scanned, wr in rows:
        print('criu-bench: %-6s %-4s %9.2f %9.2f %10.3f %9d %9d' %
              ('%d%%' % pct, mode, wall, frozen, memdump, scanned, wr))
    diag('size %d MiB, median of %d dumps, A = PAGEMAP_SCAN, B = '
         'CRIU_FAULT=135 (pagemap read())' % (size, reps))
    tap(not why, 'criu dump-time measurement (not a timing check)', why)


def main():
    os.makedirs(WORK, exist_ok=True)
    os.chdir(WORK)
    if sys.argv[1:] == ['--bench']:
        bench()
    else:
        suite()


if __name__ == '__main__':
    main()
