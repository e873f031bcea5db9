/* How long KVM takes to tear a VM down, by what the VM had: measures close() of the VM fd after creating it with
 * nothing, a TSS address, the in-kernel irqchip, the PIT, and one vCPU. Build: gcc -O2 bench/vm_teardown.c -o vm_teardown */
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}
int main(int argc,char**argv){int kvm=open("/dev/kvm",O_RDWR);
for(int mode=0;mode<5;mode++){double t0=now();int vm=ioctl(kvm,KVM_CREATE_VM,0);double t1=now();
 if(mode>=1) ioctl(vm,KVM_SET_TSS_ADDR,0xfeffd000);
 if(mode>=2) ioctl(vm,KVM_CREATE_IRQCHIP,0);
 if(mode>=3){struct kvm_pit_config p={.flags=KVM_PIT_SPEAKER_DUMMY};ioctl(vm,KVM_CREATE_PIT2,&p);}
 int vcpu=-1; if(mode>=4){vcpu=ioctl(vm,KVM_CREATE_VCPU,0);}
 double t2=now(); if(vcpu>=0) close(vcpu); close(vm); double t3=now();
 printf("mode %d create %.2f setup %.2f close %.2f ms\n",mode,t1-t0,t2-t1,t3-t2);}
}
