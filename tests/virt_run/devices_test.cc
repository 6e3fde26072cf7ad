// Each device's port (or MMIO) behaviour: UART, debug exit, fw_cfg, test latch, PCI config,
// MMIO scratch, the ISA IRQ lines against a fake IrqLines; all on the platform's buses.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fake_backend.h"
#include "virt_run/console.h"
#include "virt_run/debug_exit.h"
#include "virt_run/fw_cfg.h"
#include "virt_run/isa_irq_lines.h"
#include "virt_run/mmio_scratch.h"
#include "virt_run/pci_config.h"
#include "virt_run/platform.h"
#include "virt_run/serial_8250.h"
#include "virt_run/test_device.h"

namespace virt::run {
namespace {

uint64_t ReadN(Device& d, uint64_t offset, size_t n) {
  std::vector<uint8_t> b(n, 0x5a);
  EXPECT_TRUE(d.Read(offset, b));
  return LittleEndian(b);
}
void WriteN(Device& d, uint64_t offset, uint64_t value, size_t n) {
  std::vector<uint8_t> b(n);
  StoreLittleEndian(value, b);
  EXPECT_TRUE(d.Write(offset, b));
}

TEST(Serial8250Test, ThrBytesGoOutAsWrittenIncludingCrLf) {
  std::string out;
  Serial8250 uart([&out](uint8_t b) { out += static_cast<char>(b); });
  for (char c : std::string("ok\r\n")) WriteN(uart, 0, static_cast<uint8_t>(c), 1);
  EXPECT_EQ(out, "ok\r\n");
}

TEST(Serial8250Test, DlabTurnsOffsets0And1IntoTheDivisorLatch) {
  std::string out;
  Serial8250 uart([&out](uint8_t b) { out += static_cast<char>(b); });
  WriteN(uart, 3, 0x80, 1);  // LCR: DLAB
  WriteN(uart, 0, 0x01, 1);  // DLL
  WriteN(uart, 1, 0x00, 1);  // DLM
  EXPECT_EQ(ReadN(uart, 0, 1), 0x01u);
  EXPECT_EQ(ReadN(uart, 1, 1), 0x00u);
  EXPECT_EQ(uart.divisor(), 1);
  EXPECT_EQ(ReadN(uart, 3, 1), 0x80u);
  WriteN(uart, 3, 0x03, 1);  // 8N1, DLAB off
  EXPECT_EQ(out, "");        // the divisor was not printed
  WriteN(uart, 1, 0x0f, 1);  // IER now
  EXPECT_EQ(ReadN(uart, 1, 1), 0x0fu);
  EXPECT_EQ(uart.divisor(), 1);
  WriteN(uart, 0, 'A', 1);
  EXPECT_EQ(out, "A");
  // A 16-bit write to DLL/DLM with DLAB set: byte by byte.
  WriteN(uart, 3, 0x83, 1);
  WriteN(uart, 0, 0x0302, 2);
  EXPECT_EQ(uart.divisor(), 0x0302);
  EXPECT_EQ(out, "A");
}

TEST(Serial8250Test, LsrIsAlwaysIdleAndOtherRegisters) {
  Serial8250 uart(nullptr);
  EXPECT_EQ(ReadN(uart, 5, 1), 0x60u);  // THRE | TEMT, no data ready
  WriteN(uart, 5, 0x00, 1);             // read-only
  EXPECT_EQ(ReadN(uart, 5, 1), 0x60u);
  EXPECT_EQ(ReadN(uart, 0, 1), 0x00u);  // RBR: nothing received
  EXPECT_EQ(ReadN(uart, 2, 1), 0x01u);  // IIR: no interrupt pending
  WriteN(uart, 2, 0x07, 1);             // FCR: FIFOs on (+ reset bits)
  EXPECT_EQ(ReadN(uart, 2, 1), 0xC1u);
  WriteN(uart, 4, 0x03, 1);             // MCR: DTR | RTS
  EXPECT_EQ(ReadN(uart, 4, 1), 0x03u);
  EXPECT_EQ(ReadN(uart, 6, 1), 0xB0u);  // MSR: DCD | DSR | CTS
  WriteN(uart, 7, 0x5a, 1);
  EXPECT_EQ(ReadN(uart, 7, 1), 0x5au);  // SCR
  EXPECT_EQ(ReadN(uart, 4, 2), 0x6003u);  // a word read: MCR then LSR
}

TEST(Serial8250Test, LoopbackKeepsBytesOffTheConsole) {
  std::string out;
  Serial8250 uart([&out](uint8_t b) { out += static_cast<char>(b); });
  WriteN(uart, 4, 0x10 | 0x0B, 1);      // loopback, OUT2, RTS, DTR
  EXPECT_EQ(ReadN(uart, 6, 1), 0xB0u);  // CTS, DSR, DCD from RTS, DTR, OUT2
  WriteN(uart, 0, 'x', 1);
  EXPECT_EQ(out, "");
}

TEST(ConsoleTest, CountsBytesAndKnowsTheLineStart) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  Console console(f);
  EXPECT_TRUE(console.at_line_start());
  const uint8_t a[] = {'h', 'i'};
  console.Write(a);
  EXPECT_FALSE(console.at_line_start());
  const uint8_t nl[] = {'\r', '\n'};
  console.Write(nl);
  EXPECT_TRUE(console.at_line_start());
  EXPECT_EQ(console.bytes(), 4u);
  std::rewind(f);
  char buf[8] = {};
  EXPECT_EQ(std::fread(buf, 1, sizeof buf, f), 4u);
  EXPECT_EQ(std::string(buf), "hi\r\n");
  std::fclose(f);
}

TEST(DebugExitTest, AnyWriteReportsTheValue) {
  std::vector<uint32_t> codes;
  DebugExit dev([&codes](uint32_t c) { codes.push_back(c); });
  WriteN(dev, 0, 0x26, 4);
  WriteN(dev, 0, 1, 1);  // the real-mode test's outb
  EXPECT_EQ(codes, (std::vector<uint32_t>{0x26, 1}));
  EXPECT_EQ(ReadN(dev, 0, 4), 0xFFFFFFFFu);
}

// kvm-unit-tests' lib/x86/fwcfg.c: outw(key, 0x510), then inb(0x511) per byte, low byte first.
uint64_t FwCfgRead(FwCfg& dev, uint16_t key, size_t bytes) {
  WriteN(dev, 0, key, 2);
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v |= ReadN(dev, 1, 1) << (8 * i);
  return v;
}

TEST(FwCfgTest, KeysAndLittleEndianBytes) {
  FwCfg dev(4, 128ull << 20);
  EXPECT_EQ(FwCfgRead(dev, FwCfg::kNbCpus, 2), 4u);
  EXPECT_EQ(FwCfgRead(dev, FwCfg::kRamSize, 8), 128ull << 20);
  EXPECT_EQ(FwCfgRead(dev, FwCfg::kMaxRam, 8), 0u);
  EXPECT_EQ(FwCfgRead(dev, FwCfg::kSignature, 4), 0x554D4551u);  // "QEMU"
  EXPECT_EQ(FwCfgRead(dev, 0x1234, 8), 0u);                      // unknown key
  // Byte order on the wire: RAM_SIZE 0x08000000 is 00 00 00 08 00 ...
  WriteN(dev, 0, FwCfg::kRamSize, 2);
  std::vector<uint64_t> bytes;
  for (int i = 0; i < 10; ++i) bytes.push_back(ReadN(dev, 1, 1));
  EXPECT_EQ(bytes, (std::vector<uint64_t>{0, 0, 0, 8, 0, 0, 0, 0, 0, 0}));  // then 0 past the end
  // Selecting rewinds.
  EXPECT_EQ(FwCfgRead(dev, FwCfg::kNbCpus, 2), 4u);
  EXPECT_EQ(FwCfgRead(dev, FwCfg::kNbCpus, 1), 4u);
}

TEST(FwCfgTest, NbCpusIsTheVcpuCountExactly) {
  FwCfg dev(255, 1ull << 30);
  EXPECT_EQ(FwCfgRead(dev, FwCfg::kNbCpus, 2), 255u);
  EXPECT_EQ(FwCfgRead(dev, FwCfg::kRamSize, 8), 1ull << 30);
}

TEST(TestDeviceTest, LatchByteLanesAnySize) {
  TestDevice dev;
  WriteN(dev, 0, 0xdeadbeef, 4);
  EXPECT_EQ(ReadN(dev, 0, 4), 0xdeadbeefu);
  WriteN(dev, 1, 0x42, 1);
  EXPECT_EQ(ReadN(dev, 0, 4), 0xdead42efu);
  EXPECT_EQ(ReadN(dev, 2, 2), 0xdeadu);
  EXPECT_EQ(ReadN(dev, 3, 1), 0xdeu);
  WriteN(dev, 2, 0x1234, 2);
  EXPECT_EQ(ReadN(dev, 0, 4), 0x123442efu);
  // The flush port: a write changes nothing, a read is all-ones.
  WriteN(dev, 4, 0x1000, 4);
  EXPECT_EQ(ReadN(dev, 0, 4), 0x123442efu);
  EXPECT_EQ(ReadN(dev, 4, 4), 0xFFFFFFFFu);
}

TEST(PciConfigTest, AddressLatchReadsBackAndDataIsAllOnes) {
  PciConfig dev;
  WriteN(dev, 0, 0x80000000u | (3 << 11), 4);
  EXPECT_EQ(dev.address(), 0x80001800u);
  EXPECT_EQ(ReadN(dev, 0, 4), 0x80001800u);
  EXPECT_EQ(ReadN(dev, 4, 4), 0xFFFFFFFFu);
  EXPECT_EQ(ReadN(dev, 4, 2), 0xFFFFu);
  EXPECT_EQ(ReadN(dev, 7, 1), 0xFFu);
  WriteN(dev, 4, 0x12345678, 4);  // config data of nobody
  EXPECT_EQ(ReadN(dev, 4, 4), 0xFFFFFFFFu);
  EXPECT_EQ(dev.address(), 0x80001800u);
}

TEST(MmioScratchTest, ReadsBackWhatWasWrittenAtEverySize) {
  MmioScratch dev;
  EXPECT_EQ(ReadN(dev, 0x10, 8), 0u);
  WriteN(dev, 0x10, 0x1122334455667788ull, 8);
  EXPECT_EQ(ReadN(dev, 0x10, 8), 0x1122334455667788ull);
  EXPECT_EQ(ReadN(dev, 0x10, 4), 0x55667788u);
  EXPECT_EQ(ReadN(dev, 0x14, 2), 0x3344u);
  EXPECT_EQ(ReadN(dev, 0x17, 1), 0x11u);
  WriteN(dev, MmioScratch::kSize - 1, 0xab, 1);
  EXPECT_EQ(ReadN(dev, MmioScratch::kSize - 1, 1), 0xabu);
}

TEST(IsaIrqLinesTest, ByteWriteSetsLineNToNotNotValue) {
  testing::FakeIrqLines lines;
  IsaIrqLines dev(lines);
  WriteN(dev, 0, 1, 1);
  WriteN(dev, 5, 0x80, 1);
  WriteN(dev, 5, 0, 1);
  WriteN(dev, 23, 2, 1);
  EXPECT_EQ(lines.levels, (std::vector<std::pair<uint32_t, bool>>{
                              {0, true}, {5, true}, {5, false}, {23, true}}));
  lines.fail_set_level = true;
  uint8_t one = 1;
  auto failed = dev.Write(3, {&one, 1});
  ASSERT_FALSE(failed);
  EXPECT_STREQ(failed.error().operation, "KVM_IRQ_LINE");
}

// The platform's buses: every port and the scratch where the contract puts them.
TEST(PlatformTest, DevicesSitAtTheContractsAddresses) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  Console console(f);
  StopController stop;
  testing::FakeIrqLines lines;
  auto platform = Platform::Create({2, 64ull << 20, &lines}, console, stop);
  ASSERT_TRUE(platform) << platform.error().Message();
  Bus& ports = (*platform)->ports();
  EXPECT_EQ(ports.Claimant(0x3f8), "COM1");
  EXPECT_EQ(ports.Claimant(0x3ff), "COM1");
  EXPECT_EQ(ports.Claimant(0xf4), "debug-exit");
  EXPECT_EQ(ports.Claimant(0xe0), "pc-testdev");
  EXPECT_EQ(ports.Claimant(0xe4), "pc-testdev");
  EXPECT_EQ(ports.Claimant(0x510), "fw_cfg");
  EXPECT_EQ(ports.Claimant(0x511), "fw_cfg");
  EXPECT_EQ(ports.Claimant(0xcf8), "PCI config");
  EXPECT_EQ(ports.Claimant(0xcff), "PCI config");
  EXPECT_EQ(ports.Claimant(0x2000), "IRQ lines");
  EXPECT_EQ(ports.Claimant(0x2017), "IRQ lines");
  EXPECT_EQ(ports.Claimant(0x2018), std::nullopt);
  EXPECT_EQ(ports.Claimant(0x2100), "level-interrupt device");
  EXPECT_EQ(ports.Claimant(0x2102), "level-interrupt device");
  EXPECT_EQ(ports.Claimant(0x2103), std::nullopt);
  EXPECT_EQ(ports.Claimant(0x21), std::nullopt);  // the PIC is in the kernel
  EXPECT_EQ((*platform)->mmio().Claimant(0xff000000), "pc-testdev MMIO scratch");
  EXPECT_EQ((*platform)->mmio().Claimant(0xff00ffff), "pc-testdev MMIO scratch");
  EXPECT_EQ((*platform)->mmio().Claimant(0xff010000), std::nullopt);

  // The debug-exit port gives the verdict.
  const uint8_t code[4] = {1, 0, 0, 0};
  ASSERT_TRUE(ports.Write(0xf4, code));
  EXPECT_TRUE(stop.stopped());
  EXPECT_EQ(stop.verdict().status, 3);
  EXPECT_EQ(stop.verdict().debug_exit_code, 1u);
  std::fclose(f);
}

TEST(PlatformTest, WithoutIrqLinesThoseDevicesAreAbsent) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  Console console(f);
  StopController stop;
  auto platform = Platform::Create({1, 64ull << 20, nullptr}, console, stop);
  ASSERT_TRUE(platform) << platform.error().Message();
  EXPECT_FALSE((*platform)->has_irq_lines());
  EXPECT_EQ((*platform)->ports().Claimant(0x2000), std::nullopt);
  EXPECT_EQ((*platform)->ports().Claimant(0x2100), std::nullopt);
  std::fclose(f);
}

}  // namespace
}  // namespace virt::run
